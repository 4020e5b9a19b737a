// Package kubetest tests `nkms kube-kms-plugin` with kube-apiserver's own
// code: the EncryptionConfiguration loader of k8s.io/apiserver (which builds
// the KMS v2 envelope transformer, its gRPC client of the plugin and its
// health probe) against the nkms binary, started as `nkms server` and
// `nkms kube-kms-plugin` processes over a real Unix socket.
//
// It is a module of its own so that k8s.io/apiserver's dependencies (among
// them a newer etcd client than nkms uses) stay out of nkms's module graph.
// It has only tests; .ci/run runs them.
package kubetest
