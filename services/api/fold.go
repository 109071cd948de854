package api

import (
	"bytes"
	"errors"
	"regexp"
	"regexp/syntax"
	"unicode"
	"unicode/utf8"
)

// The index keeps messages case-folded, so that a case-insensitive regular
// expression runs as a case-sensitive one over them. That lets Go's regexp
// find a literal prefix with a plain byte search ("timeout" skips straight
// to candidate positions), which (?i) rules out: a literal-led search of a
// million messages drops from about 1 s to well under 100 ms.
//
// Folding maps every rune to the smallest rune of its simple case-folding
// orbit (unicode.SimpleFold, the same equivalence (?i) uses), so two runes
// are equal under (?i) exactly when their folds are equal. The rune count
// is unchanged, so ".", counted repetitions and anchors mean the same.

// foldRune returns the smallest rune of r's case-folding orbit.
func foldRune(r rune) rune {
	if r < utf8.RuneSelf {
		if 'a' <= r && r <= 'z' {
			return r - 'a' + 'A'
		}
		return r
	}
	m := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		m = min(m, f)
	}
	return m
}

// appendFolded appends s with every rune folded; bytes that are not valid
// UTF-8 are kept as they are.
func appendFolded(dst []byte, s string) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			dst = append(dst, c)
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, c)
			i++
			continue
		}
		dst = utf8.AppendRune(dst, foldRune(r))
		i += size
	}
	return dst
}

// errCaseSensitive rejects a pattern that turns case folding off.
var errCaseSensitive = errors.New("case-sensitive parts such as (?-i) are not supported: every search is case-insensitive")

// textFilter is a case-insensitive regular expression ready to run over
// folded text, with the literals one of which every match contains.
type textFilter struct {
	re   *regexp.Regexp
	lits [][]byte // nil: no literal to rely on
}

// match reports whether folded text b matches: a byte search for the
// required literals first, the regular expression only on a hit.
func (f *textFilter) match(b []byte) bool {
	if f.lits != nil {
		hit := false
		for _, l := range f.lits {
			if bytes.Contains(b, l) {
				hit = true
				break
			}
		}
		if !hit {
			return false
		}
	}
	return f.re.Match(b)
}

// compileFolded compiles pattern as a case-insensitive RE2 expression to be
// run over folded text: its literals are folded and lose the case-folding
// flag; its character classes, already closed under folding by the
// parser, hold the folds of their members. A pattern with a part that
// turns folding off ((?-i)) cannot run over folded text: errCaseSensitive.
func compileFolded(pattern string) (*textFilter, error) {
	re, err := syntax.Parse(pattern, syntax.Perl|syntax.FoldCase)
	if err != nil {
		return nil, err
	}
	if caseSensitive(re) {
		return nil, errCaseSensitive
	}
	foldTree(re)
	c, err := regexp.Compile(re.String())
	if err != nil {
		return nil, err
	}
	return &textFilter{re: c, lits: required(re)}, nil
}

// maxRequired is the most alternative literals a prefilter tries.
const maxRequired = 8

// required returns literals one of which every match of re contains, nil
// when it knows none: a literal itself, the best of a concatenation's
// parts, each branch's of an alternation, a repetition's at least once.
func required(re *syntax.Regexp) [][]byte {
	switch re.Op {
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase != 0 {
			return nil
		}
		return [][]byte{[]byte(string(re.Rune))}
	case syntax.OpCapture, syntax.OpPlus:
		return required(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return required(re.Sub[0])
		}
	case syntax.OpConcat:
		var best [][]byte
		for _, s := range re.Sub {
			if c := required(s); c != nil && (best == nil || selectivity(c) > selectivity(best)) {
				best = c
			}
		}
		return best
	case syntax.OpAlternate:
		var all [][]byte
		for _, s := range re.Sub {
			c := required(s)
			if c == nil || len(all)+len(c) > maxRequired {
				return nil
			}
			all = append(all, c...)
		}
		return all
	}
	return nil
}

// selectivity ranks a set of alternative literals: the shortest one's
// length per alternative.
func selectivity(lits [][]byte) float64 {
	short := len(lits[0])
	for _, l := range lits[1:] {
		short = min(short, len(l))
	}
	return float64(short) / float64(len(lits))
}

// caseSensitive reports whether re has a literal that is matched without
// folding although it has other cases, or a small character class that
// holds a rune but not all of its other cases.
func caseSensitive(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase == 0 {
			for _, r := range re.Rune {
				if unicode.SimpleFold(r) != r {
					return true
				}
			}
		}
	case syntax.OpCharClass:
		for i := 0; i+1 < len(re.Rune); i += 2 {
			lo, hi := re.Rune[i], re.Rune[i+1]
			if hi-lo > 1024 {
				continue // the parser's folded tables; too big to walk here
			}
			for r := lo; r <= hi; r++ {
				for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
					if !inClass(re.Rune, f) {
						return true
					}
				}
			}
		}
	}
	for _, s := range re.Sub {
		if caseSensitive(s) {
			return true
		}
	}
	return false
}

// inClass reports whether r lies in the sorted ranges of a character class.
func inClass(ranges []rune, r rune) bool {
	for i := 0; i+1 < len(ranges); i += 2 {
		if ranges[i] <= r && r <= ranges[i+1] {
			return true
		}
	}
	return false
}

func foldTree(re *syntax.Regexp) {
	if re.Op == syntax.OpLiteral && re.Flags&syntax.FoldCase != 0 {
		for i, r := range re.Rune {
			re.Rune[i] = foldRune(r)
		}
		re.Flags &^= syntax.FoldCase
	}
	for _, s := range re.Sub {
		foldTree(s)
	}
}
