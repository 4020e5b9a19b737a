package bolt

// FileName is the name of the data file in a server's data directory: nkms
// server opens it, nkms restore replaces it, backups are named after it.
const FileName = "nkms.db"
