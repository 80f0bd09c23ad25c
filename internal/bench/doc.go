// Package bench holds the programs and scripts `make bench` runs to
// measure xorest side by side with its peers (see scripts/bench.sh). Each
// program prints one JSON line per measurement so the script can compute
// ratios.
package bench
