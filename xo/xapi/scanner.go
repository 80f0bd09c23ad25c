package xapi

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"
)

// scanner is a minimal streaming XML tokenizer for XML-RPC. It reads from an
// io.Reader through its own buffer, so a response is decoded while it
// arrives and the body is never held in memory as a whole.
//
// It understands elements (attributes are skipped), character data with the
// five predefined entities and character references, CDATA sections,
// comments, processing instructions and a DOCTYPE-free prolog. Namespace
// prefixes are dropped (<ex:nil/> is <nil/>). Line endings in text are
// normalised to "\n" as XML requires. It does not check UTF-8 validity or
// element nesting beyond what the XML-RPC grammar in decoder.go asks for.
type scanner struct {
	r    io.Reader
	buf  []byte
	pos  int   // next unread byte in buf
	end  int   // end of valid data in buf
	base int64 // stream offset of buf[0]
	rerr error // sticky read error (io.EOF at end)
	text []byte
	name [64]byte // current tag name (local part)
	nlen int
	cr   bool // text so far ended with a CR (see appendNewlines)
}

// tag kinds returned by scanner.tag.
const (
	tagOpen      = iota // <name>
	tagClose            // </name>
	tagSelfClose        // <name/>
)

// The buffer starts small, for the small answers of most calls, and
// doubles up to scannerBufSize each time it was read through.
const (
	scannerBufSize  = 64 << 10
	scannerBufStart = 4 << 10
)

func newScanner(r io.Reader) *scanner {
	return &scanner{r: r, buf: make([]byte, scannerBufStart)}
}

// errSyntax builds a syntax error at the current offset.
func (s *scanner) errSyntax(format string, args ...any) error {
	return fmt.Errorf("%w: offset %d: %s", ErrInvalidResponse, s.base+int64(s.pos), fmt.Sprintf(format, args...))
}

// fill moves unread data to the front of buf and reads more. It reports
// whether at least one new byte is available.
func (s *scanner) fill() bool {
	if s.rerr != nil {
		return false
	}
	if s.pos > 0 {
		n := copy(s.buf, s.buf[s.pos:s.end])
		s.base += int64(s.pos)
		s.pos, s.end = 0, n
	}
	if s.end == len(s.buf) || len(s.buf) < scannerBufSize && s.base >= int64(len(s.buf)) {
		nb := make([]byte, 2*len(s.buf))
		copy(nb, s.buf[:s.end])
		s.buf = nb
	}
	for i := 0; i < 100; i++ {
		n, err := s.r.Read(s.buf[s.end:])
		s.end += n
		if err != nil {
			s.rerr = err
			return n > 0
		}
		if n > 0 {
			return true
		}
	}
	s.rerr = io.ErrNoProgress
	return false
}

// ensure tries to make n bytes available from pos; it reports whether it could.
func (s *scanner) ensure(n int) bool {
	for s.end-s.pos < n {
		if !s.fill() {
			return false
		}
	}
	return true
}

// readErr converts the sticky read error into the error for a truncated document.
func (s *scanner) readErr() error {
	if s.rerr == nil || s.rerr == io.EOF {
		return s.errSyntax("unexpected end of document")
	}
	return s.rerr
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// skipMisc skips whitespace, comments and processing instructions, and stops
// at the next '<' of an element or at any other byte. It returns an error only
// for a read failure or a malformed comment/PI; at end of input it returns
// nil with pos == end.
func (s *scanner) skipMisc() error {
	for {
		for s.pos < s.end && isSpace(s.buf[s.pos]) {
			s.pos++
		}
		if s.pos == s.end {
			if !s.fill() {
				if s.rerr == io.EOF {
					return nil
				}
				return s.rerr
			}
			continue
		}
		if s.buf[s.pos] != '<' {
			return nil
		}
		if !s.ensure(4) {
			return nil // let tag() report the truncation
		}
		switch {
		case s.buf[s.pos+1] == '?':
			if err := s.skipPast("?>"); err != nil {
				return err
			}
		case s.buf[s.pos+1] == '!' && s.buf[s.pos+2] == '-' && s.buf[s.pos+3] == '-':
			if err := s.skipPast("-->"); err != nil {
				return err
			}
		default:
			return nil
		}
	}
}

// skipPast advances beyond the next occurrence of end.
func (s *scanner) skipPast(end string) error {
	for {
		if i := bytes.Index(s.buf[s.pos:s.end], []byte(end)); i >= 0 {
			s.pos += i + len(end)
			return nil
		}
		// keep the last len(end)-1 bytes: the marker may straddle the refill
		if keep := len(end) - 1; s.end-s.pos > keep {
			s.pos = s.end - keep
		}
		if !s.fill() {
			return s.readErr()
		}
	}
}

// tag reads the element tag at pos (after skipMisc). It stores the local
// name in s.name and returns its kind.
func (s *scanner) tag() (int, error) {
	if err := s.skipMisc(); err != nil {
		return 0, err
	}
	if !s.ensure(2) {
		return 0, s.readErr()
	}
	if s.buf[s.pos] != '<' {
		return 0, s.errSyntax("expected a tag, found %q", s.buf[s.pos])
	}
	s.pos++
	kind := tagOpen
	if s.buf[s.pos] == '/' {
		kind = tagClose
		s.pos++
	}
	s.nlen = 0
	for {
		if s.pos == s.end && !s.fill() {
			return 0, s.readErr()
		}
		c := s.buf[s.pos]
		if isSpace(c) || c == '>' || c == '/' {
			break
		}
		if c == ':' { // drop a namespace prefix
			s.nlen = 0
			s.pos++
			continue
		}
		if c == '<' || c == '&' || c == '"' || c == '\'' || c == '=' {
			return 0, s.errSyntax("invalid character %q in tag name", c)
		}
		if s.nlen == len(s.name) {
			return 0, s.errSyntax("tag name too long")
		}
		s.name[s.nlen] = c
		s.nlen++
		s.pos++
	}
	if s.nlen == 0 {
		return 0, s.errSyntax("empty tag name")
	}
	// skip attributes (XML-RPC has none) up to '>' or '/>'
	var quote byte
	for {
		if s.pos == s.end && !s.fill() {
			return 0, s.readErr()
		}
		c := s.buf[s.pos]
		s.pos++
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			if kind == tagClose {
				return 0, s.errSyntax("attribute in end tag")
			}
			quote = c
		case c == '>':
			return kind, nil
		case c == '/':
			if kind == tagClose {
				return 0, s.errSyntax("malformed end tag")
			}
			if s.pos == s.end && !s.fill() {
				return 0, s.readErr()
			}
			if s.buf[s.pos] != '>' {
				return 0, s.errSyntax("expected '>' after '/'")
			}
			s.pos++
			return tagSelfClose, nil
		case c == '<':
			return 0, s.errSyntax("'<' inside a tag")
		}
	}
}

// tagName returns the local name of the last tag read. The string
// conversion in comparisons does not allocate.
func (s *scanner) tagName() []byte { return s.name[:s.nlen] }

// is reports whether the last tag read has the given local name.
func (s *scanner) is(name string) bool { return string(s.name[:s.nlen]) == name }

// exact consumes the tag <name> (or </name> if closing) when its bytes are
// next in the buffer, with nothing in between: XAPI's compact output
// always takes this path, anything else goes through tag.
func (s *scanner) exact(closing bool, name string) bool {
	n := len(name) + 2
	if closing {
		n++
	}
	b := s.buf[s.pos:s.end]
	if len(b) < n || b[0] != '<' || b[n-1] != '>' {
		return false
	}
	if closing && b[1] != '/' || string(b[n-1-len(name):n-1]) != name {
		return false
	}
	s.pos += n
	s.nlen = copy(s.name[:], name)
	return true
}

// expect reads a tag and checks its kind and name.
func (s *scanner) expect(kind int, name string) error {
	if kind != tagSelfClose && s.exact(kind == tagClose, name) {
		return nil
	}
	k, err := s.tag()
	if err != nil {
		return err
	}
	if k != kind || !s.is(name) {
		return s.errSyntax("expected %s, found %s", tagString(kind, name), tagString(k, string(s.tagName())))
	}
	return nil
}

func tagString(kind int, name string) string {
	switch kind {
	case tagClose:
		return "</" + name + ">"
	case tagSelfClose:
		return "<" + name + "/>"
	}
	return "<" + name + ">"
}

// readText reads character data up to the next element tag, expanding
// entity and character references and CDATA sections and skipping comments
// and processing instructions. The returned slice is valid until the next
// call on the scanner.
func (s *scanner) readText() ([]byte, error) {
	s.text = s.text[:0]
	s.cr = false
	for {
		i := bytes.IndexByte(s.buf[s.pos:s.end], '<')
		if i < 0 {
			if err := s.appendText(s.buf[s.pos:s.end], false); err != nil {
				return nil, err
			}
			if !s.fill() {
				return nil, s.readErr()
			}
			continue
		}
		// look far enough past '<' to recognise "<![CDATA["
		if s.end-(s.pos+i) < 9 && s.fill() {
			continue
		}
		lt := s.pos + i
		chunk := s.buf[s.pos:lt]
		if len(s.text) == 0 && bytes.IndexByte(chunk, '&') < 0 && bytes.IndexByte(chunk, '\r') < 0 {
			s.pos = lt
			if !s.markup() {
				return chunk, nil // fast path: plain text inside the buffer
			}
			s.text = append(s.text, chunk...)
		} else if err := s.appendText(chunk, true); err != nil {
			return nil, err
		}
		switch {
		case !s.markup():
			return s.text, nil
		case s.buf[s.pos+1] == '?':
			if err := s.skipPast("?>"); err != nil {
				return nil, err
			}
		case s.buf[s.pos+2] == '-':
			if err := s.skipPast("-->"); err != nil {
				return nil, err
			}
		default:
			s.pos += 9
			if err := s.readCDATA(); err != nil {
				return nil, err
			}
		}
	}
}

// markup reports whether the '<' at pos starts a comment, a processing
// instruction or a CDATA section rather than an element tag.
func (s *scanner) markup() bool {
	b := s.buf[s.pos:s.end]
	return len(b) >= 2 && b[1] == '?' ||
		len(b) >= 4 && string(b[:4]) == "<!--" ||
		len(b) >= 9 && string(b[:9]) == "<![CDATA["
}

// readCDATA appends the content of a CDATA section (after "<![CDATA[").
func (s *scanner) readCDATA() error {
	for {
		if i := bytes.Index(s.buf[s.pos:s.end], []byte("]]>")); i >= 0 {
			s.appendNewlines(s.buf[s.pos : s.pos+i])
			s.pos += i + 3
			return nil
		}
		if n := s.end - s.pos - 2; n > 0 {
			s.appendNewlines(s.buf[s.pos : s.pos+n])
			s.pos += n
		}
		if !s.fill() {
			return s.readErr()
		}
	}
}

// appendNewlines appends b to s.text with CRLF and CR turned into LF. s.cr
// remembers a CR at the end of the previous piece, so that a CRLF split by a
// buffer refill still gives a single LF.
func (s *scanner) appendNewlines(b []byte) {
	if len(b) == 0 {
		return
	}
	if s.cr && b[0] == '\n' {
		b = b[1:]
	}
	s.cr = false
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\r')
		if i < 0 {
			s.text = append(s.text, b...)
			return
		}
		s.text = append(s.text, b[:i]...)
		s.text = append(s.text, '\n')
		b = b[i+1:]
		if len(b) == 0 {
			s.cr = true
		} else if b[0] == '\n' {
			b = b[1:]
		}
	}
}

// appendText appends the character data in chunk (which starts at s.pos and
// contains no '<') to s.text, decoding references. It advances s.pos past
// what it consumed. Unless final (chunk ends at a '<'), an incomplete
// reference at the end of chunk is left unread so that the caller can
// refill and retry.
func (s *scanner) appendText(chunk []byte, final bool) error {
	for len(chunk) > 0 {
		i := bytes.IndexByte(chunk, '&')
		if i < 0 {
			s.appendNewlines(chunk)
			s.pos += len(chunk)
			return nil
		}
		s.appendNewlines(chunk[:i])
		s.pos += i
		chunk = chunk[i:]
		semi := bytes.IndexByte(chunk, ';')
		if semi < 0 {
			if final || len(chunk) > 12 || s.rerr != nil {
				return s.errSyntax("unterminated entity reference")
			}
			return nil // wait for more data
		}
		ref := chunk[1:semi]
		switch string(ref) {
		case "lt":
			s.text = append(s.text, '<')
		case "gt":
			s.text = append(s.text, '>')
		case "amp":
			s.text = append(s.text, '&')
		case "apos":
			s.text = append(s.text, '\'')
		case "quot":
			s.text = append(s.text, '"')
		default:
			r, ok := charRef(ref)
			if !ok {
				return s.errSyntax("invalid entity reference &%s;", ref)
			}
			s.text = utf8.AppendRune(s.text, r)
		}
		s.cr = false
		s.pos += semi + 1
		chunk = chunk[semi+1:]
	}
	return nil
}

// charRef decodes the body of a character reference ("#65", "#x41").
func charRef(ref []byte) (rune, bool) {
	if len(ref) < 2 || ref[0] != '#' {
		return 0, false
	}
	var n uint64
	var err error
	if ref[1] == 'x' {
		n, err = strconv.ParseUint(string(ref[2:]), 16, 32)
	} else {
		n, err = strconv.ParseUint(string(ref[1:]), 10, 32)
	}
	if err != nil {
		return 0, false
	}
	r := rune(n)
	if !isXMLChar(r) {
		return 0, false
	}
	return r, true
}

// isXMLChar reports whether r may appear in an XML document (XML 1.0 §2.2).
func isXMLChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}
