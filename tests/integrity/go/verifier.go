// Command verifier checks a C2SP tiled transparency log (c2sp.org/tlog-tiles) with Go's own
// golang.org/x/mod/sumdb/note and golang.org/x/mod/sumdb/tlog, independently of the log's code.
// It is dstrail's interoperability test, and a tool an auditor can run against any dstrail.
//
// It fetches <prefix>/checkpoint and verifies the signed note with the log's vkey, recomputes
// the checkpoint's root from the hash tiles, checks inclusion proofs of random events against
// their entry bundles (or every entry with -all), and, given a checkpoint saved earlier (-old),
// checks that the log's current tree extends it (no rollback, no fork).
//
// Build and run it offline in GOPATH mode with Debian's golang-golang-x-mod-dev:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go run verifier.go \
//	    -url http://127.0.0.1:8000/api/dstrail/v1/tlog -vkey 'dstrail.local/audit+0123abcd+AV...'
//
// The API key (a SysAdmin's or an Auditor's) is read from DSTRAIL_API_KEY, or -key, and sent as
// X-Domino-Api-Key; none is needed when the log publishes its tiles (DSTRAIL_TLOG_PUBLIC), except
// for entry bundles. Exit status: 0 all checks passed, 1 a check failed (the line starting
// FAIL names it), 2 the command line is wrong.
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const (
	tileHeight = 8
	tileWidth  = 1 << tileHeight
)

// checkpoint is what a C2SP checkpoint note's text states (c2sp.org/tlog-checkpoint).
type checkpoint struct {
	origin string
	size   int64
	root   tlog.Hash
	note   []byte
}

// failure is a failed check: which one, and why.
type failure struct {
	check string
	err   error
}

func (f *failure) Error() string { return f.check + ": " + f.err.Error() }

func fail(check string, format string, args ...any) error {
	return &failure{check, fmt.Errorf(format, args...)}
}

// client fetches the log's resources under its prefix.
type client struct {
	prefix string
	apiKey string
	http   *http.Client
}

func (c *client) get(path string) ([]byte, error) {
	request, err := http.NewRequest(http.MethodGet, c.prefix+"/"+path, nil)
	if err != nil {
		return nil, err
	}
	if c.apiKey != "" {
		request.Header.Set("X-Domino-Api-Key", c.apiKey)
	}
	request.Header.Set("User-Agent", "dstrail-tlog-verifier")
	response, err := c.http.Do(request) // asks for gzip and inflates it
	if err != nil {
		return nil, err
	}
	defer response.Body.Close()
	body, err := io.ReadAll(io.LimitReader(response.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %v", path, err)
	}
	if response.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: HTTP %d: %s", path, response.StatusCode, bytes.TrimSpace(body))
	}
	return body, nil
}

// tilePath is a tile's C2SP path: tile/<L>/<N>[.p/<W>] (no height: it is always 8), or
// tile/entries/<N>[.p/<W>] for an entry bundle (level -1, as Go's tlog calls raw data).
func tilePath(t tlog.Tile) string {
	n := fmt.Sprintf("%03d", t.N%1000)
	for rest := t.N / 1000; rest > 0; rest /= 1000 {
		n = fmt.Sprintf("x%03d/%s", rest%1000, n)
	}
	level := strconv.Itoa(t.L)
	if t.L == -1 {
		level = "entries"
	}
	path := "tile/" + level + "/" + n
	if t.W != 1<<t.H {
		path += ".p/" + strconv.Itoa(t.W)
	}
	return path
}

// tileReader is a tlog.TileReader over HTTP. Tiles are kept in memory once fetched; the
// tlog.HashReader built on it authenticates them against the checkpoint at every read.
type tileReader struct {
	client *client
	cache  map[tlog.Tile][]byte
}

func (r *tileReader) Height() int { return tileHeight }

func (r *tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	data := make([][]byte, len(tiles))
	for i, t := range tiles {
		if cached, ok := r.cache[t]; ok {
			data[i] = cached
			continue
		}
		body, err := r.client.get(tilePath(t))
		if err != nil {
			return nil, err
		}
		if len(body) != t.W*tlog.HashSize {
			return nil, fmt.Errorf("%s is %d bytes, not %d", tilePath(t), len(body), t.W*tlog.HashSize)
		}
		r.cache[t] = body
		data[i] = body
	}
	return data, nil
}

func (r *tileReader) SaveTiles(tiles []tlog.Tile, data [][]byte) {}

// bundles reads entry bundles and splits them into entries.
type bundles struct {
	client *client
	size   int64
	cache  map[int64][][]byte
}

// entry is the record of leaf index (0-based) in the tree of b.size leaves.
func (b *bundles) entry(index int64) ([]byte, error) {
	entries, err := b.bundle(index / tileWidth)
	if err != nil {
		return nil, err
	}
	return entries[index%tileWidth], nil
}

func (b *bundles) bundle(n int64) ([][]byte, error) {
	if entries, ok := b.cache[n]; ok {
		return entries, nil
	}
	width := int64(tileWidth)
	if rest := b.size - n*tileWidth; rest < tileWidth {
		width = rest
	}
	t := tlog.Tile{H: tileHeight, L: -1, N: n, W: int(width)}
	body, err := b.client.get(tilePath(t))
	if err != nil {
		return nil, err
	}
	var entries [][]byte
	for len(body) > 0 {
		if len(body) < 2 {
			return nil, fmt.Errorf("%s: a truncated length at its end", tilePath(t))
		}
		length := int(binary.BigEndian.Uint16(body))
		if len(body) < 2+length {
			return nil, fmt.Errorf("%s: entry %d is cut short", tilePath(t), len(entries))
		}
		entries = append(entries, body[2:2+length])
		body = body[2+length:]
	}
	if int64(len(entries)) != width {
		return nil, fmt.Errorf("%s holds %d entries, not %d", tilePath(t), len(entries), width)
	}
	b.cache[n] = entries
	return entries, nil
}

// parseCheckpoint opens a note with the log's verifier and reads its checkpoint text.
func parseCheckpoint(msg []byte, verifier note.Verifier) (*checkpoint, error) {
	n, err := note.Open(msg, note.VerifierList(verifier))
	if err != nil {
		return nil, fmt.Errorf("the note does not verify with the vkey: %v", err)
	}
	lines := strings.Split(strings.TrimSuffix(n.Text, "\n"), "\n")
	if len(lines) < 3 {
		return nil, errors.New("the note text is not origin, size and root lines")
	}
	if lines[0] != verifier.Name() {
		return nil, fmt.Errorf("origin %q is not the vkey's name %q", lines[0], verifier.Name())
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return nil, fmt.Errorf("tree size %q is not a decimal number", lines[1])
	}
	raw, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(raw) != tlog.HashSize {
		return nil, fmt.Errorf("root %q is not the base64 of 32 bytes", lines[2])
	}
	c := &checkpoint{origin: lines[0], size: size, note: msg}
	copy(c.root[:], raw)
	return c, nil
}

type options struct {
	prefix   string
	vkey     string
	apiKey   string
	sample   int
	all      bool
	old      string
	save     string
	seed     int64
	timeout  time.Duration
	verifier note.Verifier
}

func run(o options, out io.Writer) error {
	c := &client{prefix: strings.TrimRight(o.prefix, "/"), apiKey: o.apiKey, http: &http.Client{Timeout: o.timeout}}

	msg, err := c.get("checkpoint")
	if err != nil {
		return fail("checkpoint", "%v", err)
	}
	current, err := parseCheckpoint(msg, o.verifier)
	if err != nil {
		return fail("signature", "%v", err)
	}
	fmt.Fprintf(out, "checkpoint: %s, %d events, root %s\n", current.origin, current.size, current.root)
	fmt.Fprintf(out, "ok   signature: the checkpoint is signed by %s+%08x\n", o.verifier.Name(), o.verifier.KeyHash())

	var old *checkpoint
	if o.old != "" {
		saved, err := os.ReadFile(o.old)
		if err != nil {
			return fail("consistency", "reading the old checkpoint: %v", err)
		}
		if old, err = parseCheckpoint(saved, o.verifier); err != nil {
			return fail("consistency", "the old checkpoint %s: %v", o.old, err)
		}
		if old.size > current.size {
			return fail("consistency", "rollback: the log's checkpoint has %d events, fewer than the %d of the old checkpoint", current.size, old.size)
		}
	}

	if current.size == 0 {
		if current.root != tlog.Hash(sha256.Sum256(nil)) {
			return fail("root", "an empty tree's root is SHA-256 of nothing, not %s", current.root)
		}
		fmt.Fprintln(out, "ok   root: the empty tree")
		return finish(o, current, old, out)
	}

	tiles := &tileReader{client: c, cache: map[tlog.Tile][]byte{}}
	hashes := tlog.TileHashReader(tlog.Tree{N: current.size, Hash: current.root}, tiles)
	root, err := tlog.TreeHash(current.size, hashes)
	if err != nil {
		return fail("root", "the tiles do not lead to the checkpoint's root: %v", err)
	}
	if root != current.root {
		return fail("root", "the tiles lead to %s, not the checkpoint's %s", root, current.root)
	}
	fmt.Fprintf(out, "ok   root: recomputed from %d hash tiles\n", len(tiles.cache))

	entries := &bundles{client: c, size: current.size, cache: map[int64][][]byte{}}
	if o.all {
		for n := int64(0); n*tileWidth < current.size; n++ {
			width := current.size - n*tileWidth
			if width > tileWidth {
				width = tileWidth
			}
			leaves, err := tlog.ReadTileData(tlog.Tile{H: tileHeight, L: 0, N: n, W: int(width)}, hashes)
			if err != nil {
				return fail("entries", "level 0 tile %d: %v", n, err)
			}
			bundle, err := entries.bundle(n)
			if err != nil {
				return fail("entries", "%v", err)
			}
			for i, entry := range bundle {
				index := n*tileWidth + int64(i)
				var leaf tlog.Hash
				copy(leaf[:], leaves[i*tlog.HashSize:])
				if tlog.RecordHash(entry) != leaf {
					return fail("entries", "entry %d (event seq %d) does not hash to its leaf: it was changed", index, index+1)
				}
			}
		}
		fmt.Fprintf(out, "ok   entries: all %d entries hash to their authenticated leaves\n", current.size)
	}

	indexes := sampleIndexes(current.size, o.sample, o.seed)
	for _, index := range indexes {
		entry, err := entries.entry(index)
		if err != nil {
			return fail("inclusion", "%v", err)
		}
		proof, err := tlog.ProveRecord(current.size, index, hashes)
		if err != nil {
			return fail("inclusion", "event seq %d: building its proof from the tiles: %v", index+1, err)
		}
		if err := tlog.CheckRecord(proof, current.size, current.root, index, tlog.RecordHash(entry)); err != nil {
			return fail("inclusion", "event seq %d is not in the checkpoint's tree as its entry bundle says: %v", index+1, err)
		}
	}
	if len(indexes) > 0 {
		fmt.Fprintf(out, "ok   inclusion: %d events (seq %s) proven in the checkpoint's tree\n", len(indexes), seqs(indexes))
	}

	if old != nil && old.size > 0 {
		proof, err := tlog.ProveTree(current.size, old.size, hashes)
		if err != nil {
			return fail("consistency", "building the proof from %d to %d events: %v", old.size, current.size, err)
		}
		if err := tlog.CheckTree(proof, current.size, current.root, old.size, old.root); err != nil {
			return fail("consistency", "the log's tree of %d events does not extend the old checkpoint of %d events (a fork or a rewritten trail): %v", current.size, old.size, err)
		}
	}
	return finish(o, current, old, out)
}

func finish(o options, current, old *checkpoint, out io.Writer) error {
	if old != nil {
		fmt.Fprintf(out, "ok   consistency: the tree of %d events extends the old checkpoint of %d events\n", current.size, old.size)
	}
	if o.save != "" {
		if err := os.WriteFile(o.save, current.note, 0o644); err != nil {
			return fail("save", "%v", err)
		}
		fmt.Fprintf(out, "saved the checkpoint to %s (pass it as -old next time)\n", o.save)
	}
	return nil
}

// sampleIndexes picks up to count distinct leaf indexes below size, always including the
// first and the last leaf, the rest at random.
func sampleIndexes(size int64, count int, seed int64) []int64 {
	if count <= 0 || size == 0 {
		return nil
	}
	if int64(count) >= size {
		all := make([]int64, size)
		for i := range all {
			all[i] = int64(i)
		}
		return all
	}
	random := rand.New(rand.NewSource(seed))
	picked := map[int64]bool{0: true, size - 1: true}
	for len(picked) < count {
		picked[random.Int63n(size)] = true
	}
	indexes := make([]int64, 0, len(picked))
	for index := range picked {
		indexes = append(indexes, index)
	}
	sort.Slice(indexes, func(i, j int) bool { return indexes[i] < indexes[j] })
	return indexes
}

func seqs(indexes []int64) string {
	parts := make([]string, len(indexes))
	for i, index := range indexes {
		parts[i] = strconv.FormatInt(index+1, 10)
	}
	if len(parts) > 8 {
		parts = append(parts[:8], "...")
	}
	return strings.Join(parts, ", ")
}

func main() {
	var o options
	flag.StringVar(&o.prefix, "url", "", "the log's prefix, e.g. http://127.0.0.1:8000/api/dstrail/v1/tlog (required)")
	flag.StringVar(&o.vkey, "vkey", "", "the log's verifier key <origin>+<hex id>+<base64 key> (required)")
	flag.StringVar(&o.apiKey, "key", os.Getenv("DSTRAIL_API_KEY"), "API key sent as X-Domino-Api-Key (default: $DSTRAIL_API_KEY)")
	flag.IntVar(&o.sample, "sample", 16, "how many events to prove included, at random (the first and last always)")
	flag.BoolVar(&o.all, "all", false, "check every entry against its leaf, not only the sample")
	flag.StringVar(&o.old, "old", "", "a checkpoint saved earlier (-save): check the log's tree extends it")
	flag.StringVar(&o.save, "save", "", "write the verified checkpoint to this file")
	flag.Int64Var(&o.seed, "seed", time.Now().UnixNano(), "seed of the random sample")
	flag.DurationVar(&o.timeout, "timeout", 30*time.Second, "timeout of each HTTP request")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: verifier -url PREFIX -vkey VKEY [flags]\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if o.prefix == "" || o.vkey == "" || flag.NArg() > 0 || o.sample < 0 {
		flag.Usage()
		os.Exit(2)
	}
	verifier, err := note.NewVerifier(o.vkey)
	if err != nil {
		fmt.Fprintf(os.Stderr, "verifier: -vkey %q: %v\n", o.vkey, err)
		os.Exit(2)
	}
	o.verifier = verifier
	if err := run(o, os.Stdout); err != nil {
		var f *failure
		if errors.As(err, &f) {
			fmt.Printf("FAIL %s\n", f)
		} else {
			fmt.Printf("FAIL %v\n", err)
		}
		os.Exit(1)
	}
	fmt.Println("verified")
}
