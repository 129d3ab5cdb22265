// check_proof verifies a C2SP tlog-proof (c2sp.org/tlog-proof@v1) made by dstrail, with Go's
// golang.org/x/mod/sumdb/note (the log's signature) and sumdb/tlog (the inclusion proof), and
// Ed25519 cosignatures v1 (c2sp.org/tlog-cosignature) checked here with crypto/ed25519. It
// imports nothing of dstrail.
//
// Usage: check_proof LOG_VKEY PROOF_FILE [MIN_WITNESSES WITNESS_VKEY...]
//
// Exit status 0 and "OK ..." when the proof holds, 1 and "FAILED: <why>" otherwise.
package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func main() {
	if len(os.Args) < 3 {
		fail("usage: check_proof LOG_VKEY PROOF_FILE [MIN_WITNESSES WITNESS_VKEY...]")
	}
	data, err := os.ReadFile(os.Args[2])
	check("reading the proof", err)
	head, signed, found := bytes.Cut(data, []byte("\n\n"))
	if !found {
		fail("no blank line before the checkpoint")
	}
	lines := strings.Split(string(head), "\n")
	if len(lines) < 3 || lines[0] != "c2sp.org/tlog-proof@v1" || !strings.HasPrefix(lines[1], "extra ") || !strings.HasPrefix(lines[2], "index ") {
		fail("not a tlog-proof with extra and index lines")
	}
	extra, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(lines[1], "extra "))
	check("the extra line", err)
	index, err := strconv.ParseInt(strings.TrimPrefix(lines[2], "index "), 10, 64)
	check("the index line", err)
	var proof tlog.RecordProof
	for _, line := range lines[3:] {
		h, err := tlog.ParseHash(line)
		check("an inclusion proof line", err)
		proof = append(proof, h)
	}

	// The log's signature (signed-note, Ed25519); unknown keys (the witnesses') are ignored.
	verifier, err := note.NewVerifier(os.Args[1])
	check("the log vkey", err)
	n, err := note.Open(signed, note.VerifierList(verifier))
	check("the checkpoint note", err)

	// tlog-checkpoint: origin, size, base64 root.
	text := strings.Split(n.Text, "\n")
	if len(text) < 4 || text[0] != verifier.Name() {
		fail("the checkpoint is not of the log " + verifier.Name())
	}
	size, err := strconv.ParseInt(text[1], 10, 64)
	check("the tree size", err)
	root, err := tlog.ParseHash(text[2])
	check("the root hash", err)

	// The record: its leaf hash is SHA-256(0x00 || extra); the extra is the event, with its seq.
	var event struct {
		Seq int64 `json:"seq"`
	}
	check("the event in the extra", json.Unmarshal(extra, &event))
	if event.Seq != index+1 {
		fail(fmt.Sprintf("the extra is event %d, the index %d", event.Seq, index))
	}
	check("the inclusion proof", tlog.CheckRecord(proof, size, root, index, tlog.RecordHash(extra)))

	cosigned := 0
	if len(os.Args) > 3 {
		required, err := strconv.Atoi(os.Args[3])
		check("MIN_WITNESSES", err)
		for _, vkey := range os.Args[4:] {
			if cosignedBy(vkey, n) {
				cosigned++
			}
		}
		if cosigned < required {
			fail(fmt.Sprintf("%d witnesses cosigned, %d required", cosigned, required))
		}
	}
	fmt.Printf("OK event %d in tree %d, %d cosignatures\n", index+1, size, cosigned)
}

// cosignedBy checks the cosignature of a witness (vkey of type 0x04) on the note, if it has one.
func cosignedBy(vkey string, n *note.Note) bool {
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) != 3 {
		fail("a witness vkey is malformed")
	}
	name := parts[0]
	id, err := hex.DecodeString(parts[1])
	check("a witness key id", err)
	key, err := base64.StdEncoding.DecodeString(parts[2])
	check("a witness key", err)
	if len(id) != 4 || len(key) != 33 || key[0] != 0x04 {
		fail("a witness vkey is not an Ed25519 cosignature key")
	}
	sum := sha256.Sum256(append([]byte(name+"\n"), key...))
	if !bytes.Equal(sum[:4], id) {
		fail("a witness key id does not match its key")
	}
	for _, sig := range n.UnverifiedSigs {
		if sig.Name != name || sig.Hash != binary.BigEndian.Uint32(id) {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(sig.Base64)
		check("a cosignature", err)
		if len(raw) != 4+8+64 {
			fail("a cosignature of " + name + " is not 8 bytes of time and 64 of signature")
		}
		timestamp := binary.BigEndian.Uint64(raw[4:12])
		message := fmt.Sprintf("cosignature/v1\ntime %d\n%s", timestamp, n.Text)
		if !ed25519.Verify(ed25519.PublicKey(key[1:]), []byte(message), raw[12:]) {
			fail("the cosignature of " + name + " does not verify")
		}
		return true
	}
	return false
}

func check(what string, err error) {
	if err != nil {
		fail(what + ": " + err.Error())
	}
}

func fail(why string) {
	fmt.Println("FAILED: " + why)
	os.Exit(1)
}
