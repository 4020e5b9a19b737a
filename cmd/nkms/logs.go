package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/nkms/nkms/client"
)

// logsCommand is `nkms logs TAG`: a key's usage log.
func logsCommand(c *cli) *cobra.Command {
	var since, until, keyword, action string
	var limit, page int
	var last bool
	cmd := c.clientCommand(&cobra.Command{
		Use:   "logs TAG [--since TIME] [--until TIME] [--keyword WORD] [--action NAME] [--limit N] [--page N] | --last",
		Short: "Show a key's usage log, newest first",
		Long: `Show a key's usage log, newest first, as a table: TIME (UTC), ACTION, RESULT,
AUTH (ACCOUNT, TOKEN or SYSTEM), REQUESTER (access key; for token calls the
access key that issued the token), IP and MESSAGE (the error code of a failed
call). The server writes entries in batches, a fraction of a second after the
calls.

--since and --until take a time (2026-01-02T15:04:05Z, 2026-01-02 15:04:05,
2026-01-02, in UTC unless an offset is given) or a duration before now (90m,
2h, 7d). Without them the server shows the last day. --keyword keeps the
entries in whose action, requester, IP, result, auth type or message the word
occurs (any case); --action keeps those whose action is NAME (e.g. Encrypt).
--limit is the page size (1-200, default 100), --page the page number.

--last shows only the key's latest entry (Get Latest Use Info).

-o json prints the API's data: {"activityLogList", "pageSize",
"currentPageNo", "totalPageNo", "totalCount"}, or for --last one entry
(null for a key never used).`,
		Example: `  nkms logs 1a2b3c
  nkms logs 1a2b3c --since 2h --action Decrypt
  nkms logs 1a2b3c --since 2026-01-01 --until 2026-01-02 --limit 200 --page 2
  nkms logs 1a2b3c --last`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: c.completeKeyArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			if last {
				if since != "" || until != "" || keyword != "" || action != "" || cmd.Flags().Changed("limit") || cmd.Flags().Changed("page") {
					return fmt.Errorf("--last shows the latest entry only: drop the other filters")
				}
				return c.lastUse(cmd, args[0])
			}
			now := time.Now()
			q := client.ActivityQuery{Keyword: keyword, PageNo: page, PageSize: limit}
			var err error
			if q.From, err = parseLogTime("--since", since, now); err != nil {
				return err
			}
			if q.To, err = parseLogTime("--until", until, now); err != nil {
				return err
			}
			if limit < 1 || limit > 200 {
				return fmt.Errorf("--limit %d: use 1-200 (and --page for more)", limit)
			}
			if page < 1 {
				return fmt.Errorf("--page %d: pages count from 1", page)
			}
			if action != "" && keyword != "" {
				return fmt.Errorf("use --keyword or --action, not both")
			}
			if action != "" {
				q.Keyword = action // the server narrows, the exact match is below
			}
			kms, err := c.client()
			if err != nil {
				return err
			}
			list, err := kms.Activities(cmd.Context(), args[0], q)
			if err != nil {
				return c.explain("logs", err)
			}
			if action != "" {
				kept := list.ActivityLogList[:0]
				for _, a := range list.ActivityLogList {
					if strings.EqualFold(a.Data.API.Action, action) {
						kept = append(kept, a)
					}
				}
				list.ActivityLogList = kept
			}
			if list.ActivityLogList == nil {
				list.ActivityLogList = []client.Activity{}
			}
			if c.jsonOutput() {
				return c.printJSON(list)
			}
			if len(list.ActivityLogList) == 0 {
				c.note("no usage log entries of key %s match", args[0])
				return nil
			}
			if err := c.printActivities(list.ActivityLogList); err != nil {
				return err
			}
			if list.CurrentPageNo < list.TotalPageNo {
				c.note("page %d of %d (%d entries in all); see the next with --page %d",
					list.CurrentPageNo, list.TotalPageNo, list.TotalCount, list.CurrentPageNo+1)
			}
			return nil
		},
	})
	f := cmd.Flags()
	f.StringVar(&since, "since", "", "show entries from this time or duration ago (default: a day ago)")
	f.StringVar(&until, "until", "", "show entries up to this time or duration ago (default: now)")
	f.StringVar(&keyword, "keyword", "", "show entries in which this word occurs")
	f.StringVar(&action, "action", "", "show entries of this action only, e.g. Encrypt")
	f.IntVar(&limit, "limit", 100, "entries per page, 1-200")
	f.IntVar(&page, "page", 1, "page number, from 1")
	f.BoolVar(&last, "last", false, "show only the latest entry (Get Latest Use Info)")
	return cmd
}

// lastUse prints the latest usage-log entry of the key tag.
func (c *cli) lastUse(cmd *cobra.Command, tag string) error {
	kms, err := c.client()
	if err != nil {
		return err
	}
	a, err := kms.LastUse(cmd.Context(), tag)
	if err != nil {
		return c.explain("logs --last", err)
	}
	if c.jsonOutput() {
		return c.printJSON(a)
	}
	if a == nil {
		c.note("key %s has no usage log entry yet", tag)
		return nil
	}
	return c.printActivities([]client.Activity{*a})
}

// printActivities writes usage-log entries as an aligned table.
func (c *cli) printActivities(list []client.Activity) error {
	w := c.table()
	fmt.Fprintln(w, "TIME\tACTION\tRESULT\tAUTH\tREQUESTER\tIP\tMESSAGE")
	for _, a := range list {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", activityTime(a.Timestamp), dash(a.Data.API.Action),
			dash(a.Data.API.Result), dash(a.Data.API.Type), dash(a.Data.Requestor.ID), dash(a.Data.Requestor.IP), dash(a.Message))
	}
	return w.Flush()
}

// activityTime prints the ISO-8601 time of an entry like formatMillis;
// a time it cannot read is printed as it is.
func activityTime(s string) string {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return dash(s)
	}
	return formatMillis(t.UnixMilli())
}

// dash is s, or "-" when s is empty, so that table columns stay aligned.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// logTimeLayouts are the time formats of --since and --until.
var logTimeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05Z07:00", "2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02"}

// parseLogTime parses --since or --until: "" (zero, the server's default),
// a time of logTimeLayouts (UTC unless it has an offset), or a duration
// before now ("90m", "2h", "7d").
func parseLogTime(flag, v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	for _, layout := range logTimeLayouts {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	if n, ok := strings.CutSuffix(v, "d"); ok {
		// Past 100,000 days (273 years) a Duration would overflow.
		if days, err := strconv.Atoi(n); err == nil && days >= 0 && days <= 100_000 {
			return now.Add(-time.Duration(days) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%s %q: use a time such as 2026-01-02T15:04:05Z or 2026-01-02, or a duration ago such as 2h or 7d", flag, clip(v, 40))
}
