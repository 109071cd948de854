package main

import (
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"

	"github.com/vigil-monitor/vigil"
)

// printTable writes a section as a readable table.
func printTable(w io.Writer, v any) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	switch s := v.(type) {
	case vigil.CPUStats:
		fmt.Fprintf(tw, "count\t%d\n", s.Count)
		fmt.Fprintf(tw, "frequency\t%s MHz\n", num(s.Frequency))
		fmt.Fprintf(tw, "percent used\t%s %%\n", num(s.PercentUsed))
	case vigil.MemoryStats:
		for _, r := range []struct {
			k string
			v uint64
		}{{"total", s.Total}, {"available", s.Available}, {"used", s.Used}, {"free", s.Free}} {
			fmt.Fprintf(tw, "%s\t%s\t(%d bytes)\n", r.k, byteSize(r.v), r.v)
		}
		fmt.Fprintf(tw, "percent used\t%s %%\t\n", num(s.PercentUsed))
	case []vigil.DiskStats:
		fmt.Fprintln(tw, "DEVICE\tFILE SYSTEM\tMOUNT POINT\tTOTAL\tUSED\tFREE\tUSED %")
		for _, d := range s {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.Device, d.FileSystem, d.MountPoint, byteSize(d.Total), byteSize(d.Used), byteSize(d.Free), num(d.PercentUsed))
		}
	case []vigil.ProcessInfo:
		fmt.Fprintln(tw, "PID\tUSER\tNAME")
		for _, p := range s {
			fmt.Fprintf(tw, "%d\t%s\t%s\n", p.PID, p.Username, p.Name)
		}
	case []vigil.NetworkStats:
		fmt.Fprintln(tw, "INTERFACE\tIPV4\tNETMASK\tSENT\tRECEIVED")
		for _, n := range s {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", n.Name, dash(n.IP), dash(n.Netmask), byteSize(n.BytesSent), byteSize(n.BytesRecv))
		}
	default:
		return fmt.Errorf("no table for %T", v)
	}
	return tw.Flush()
}

// byteSize formats n in binary units: "7.8 GiB".
func byteSize(n uint64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatUint(n, 10) + " B"
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
