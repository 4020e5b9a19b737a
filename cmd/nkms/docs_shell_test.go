package main

import (
	"fmt"
	"strings"
)

// This file is the shell side of the docs check (docs_test.go): it finds
// the command lines of a Markdown file's ```sh blocks and splits each into
// simple commands, as far as the documentation uses the shell: quotes,
// $VAR, $(…) and <(…), pipes, &&, ||, ;, redirections, comments and leading
// VAR=value assignments.

// docLine is one command line of a ```sh block (continuation lines joined).
type docLine struct {
	file    string // path relative to the repository root
	line    int    // 1-based line of its first physical line
	text    string
	section string // the heading the block is under
}

func (l docLine) pos() string { return fmt.Sprintf("%s:%d", l.file, l.line) }

// shellBlockLangs are the info strings that mark a block of commands; the
// documentation uses sh, and the other names are refused so that no block of
// commands escapes the check under another name.
var shellBlockLangs = map[string]bool{"sh": true, "bash": true, "shell": true, "console": true, "zsh": true}

// commandLines returns the command lines of the ```sh blocks of a Markdown
// file, and problems for blocks of commands fenced under another name.
func commandLines(file, text string) (lines []docLine, problems []string) {
	var (
		inBlock, isShell bool
		section          string
		pending          *docLine
	)
	for i, raw := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(raw)
		if strings.HasPrefix(trimmed, "```") {
			if inBlock {
				inBlock = false
				continue
			}
			inBlock = true
			lang := strings.TrimSpace(strings.TrimPrefix(trimmed, "```"))
			isShell = lang == "sh"
			if !isShell && shellBlockLangs[lang] {
				problems = append(problems, fmt.Sprintf("%s:%d: a block of commands is fenced ```sh (not ```%s)", file, i+1, lang))
			}
			continue
		}
		if !inBlock {
			if strings.HasPrefix(raw, "#") {
				section = strings.TrimSpace(strings.TrimLeft(raw, "#"))
			}
			continue
		}
		if !isShell {
			continue
		}
		if pending != nil {
			pending.text += " " + trimmed
		} else {
			if trimmed == "" || strings.HasPrefix(trimmed, "#") {
				continue
			}
			pending = &docLine{file: file, line: i + 1, text: trimmed, section: section}
		}
		if strings.HasSuffix(pending.text, "\\") {
			pending.text = strings.TrimSuffix(pending.text, "\\")
			continue
		}
		lines = append(lines, *pending)
		pending = nil
	}
	return lines, problems
}

// word is one shell word after quote removal. dynamic: its value comes from
// the shell ($VAR, $(…), <(…)), so it cannot be checked as a literal.
type word struct {
	text    string
	dynamic bool
}

// shellParser splits one command line into simple commands.
type shellParser struct {
	s    string
	i    int
	cmds [][]word
}

// splitCommands returns the simple commands of line, those inside $(…) and
// <(…) included, each without its redirections and leading assignments.
func splitCommands(line string) ([][]word, error) {
	p := &shellParser{s: line}
	if err := p.parse(0); err != nil {
		return nil, err
	}
	var out [][]word
	for _, c := range p.cmds {
		for len(c) > 0 && isAssignment(c[0].text) {
			c = c[1:]
		}
		if len(c) > 0 {
			out = append(out, c)
		}
	}
	return out, nil
}

func isAssignment(w string) bool {
	name, _, ok := strings.Cut(w, "=")
	if !ok || name == "" {
		return false
	}
	for i, r := range name {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// parse reads commands until the end of the line or, at depth > 0, the ')'
// that closes a substitution.
func (p *shellParser) parse(depth int) error {
	var cur []word
	end := func() {
		if len(cur) > 0 {
			p.cmds = append(p.cmds, cur)
		}
		cur = nil
	}
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == ' ' || c == '\t':
			p.i++
		case c == ')' && depth > 0:
			p.i++
			end()
			return nil
		case c == '#':
			p.i = len(p.s) // a comment: # at the start of a word
		case c == '|' || c == '&' || c == ';':
			p.i++
			end()
		case c == '<' && p.i+1 < len(p.s) && p.s[p.i+1] == '(':
			p.i += 2
			if err := p.parse(depth + 1); err != nil {
				return err
			}
			cur = append(cur, word{text: "<(…)", dynamic: true})
		case c == '<' || c == '>':
			for p.i < len(p.s) && strings.IndexByte("<>&", p.s[p.i]) >= 0 {
				p.i++
			}
			for p.i < len(p.s) && p.s[p.i] == ' ' {
				p.i++
			}
			if _, err := p.word(depth); err != nil { // the redirection's target
				return err
			}
		default:
			w, err := p.word(depth)
			if err != nil {
				return err
			}
			if p.i < len(p.s) && (p.s[p.i] == '>' || p.s[p.i] == '<') && isDigits(w.text) {
				continue // 2>file: a file descriptor, not a word
			}
			cur = append(cur, w)
		}
	}
	if depth > 0 {
		return fmt.Errorf("unclosed $( or <(")
	}
	end()
	return nil
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// word reads one word at p.i.
func (p *shellParser) word(depth int) (word, error) {
	var w word
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == ' ' || c == '\t' || strings.IndexByte("|&;<>", c) >= 0 || c == ')' && depth > 0:
			w.text = b.String()
			return w, nil
		case c == '\'':
			j := strings.IndexByte(p.s[p.i+1:], '\'')
			if j < 0 {
				return w, fmt.Errorf("unclosed '")
			}
			b.WriteString(p.s[p.i+1 : p.i+1+j])
			p.i += j + 2
		case c == '"':
			p.i++
			for {
				if p.i >= len(p.s) {
					return w, fmt.Errorf(`unclosed "`)
				}
				c := p.s[p.i]
				if c == '"' {
					p.i++
					break
				}
				if c == '\\' && p.i+1 < len(p.s) {
					b.WriteByte(p.s[p.i+1])
					p.i += 2
					continue
				}
				if c == '$' {
					if err := p.dollar(&b, depth); err != nil {
						return w, err
					}
					w.dynamic = true
					continue
				}
				b.WriteByte(c)
				p.i++
			}
		case c == '\\' && p.i+1 < len(p.s):
			b.WriteByte(p.s[p.i+1])
			p.i += 2
		case c == '$':
			if err := p.dollar(&b, depth); err != nil {
				return w, err
			}
			w.dynamic = true
		default:
			b.WriteByte(c)
			p.i++
		}
	}
	w.text = b.String()
	return w, nil
}

// dollar reads $NAME, ${NAME} or $(…) at p.i into b.
func (p *shellParser) dollar(b *strings.Builder, depth int) error {
	start := p.i
	p.i++
	switch {
	case p.i < len(p.s) && p.s[p.i] == '(':
		p.i++
		if err := p.parse(depth + 1); err != nil {
			return err
		}
		b.WriteString("$(…)")
		return nil
	case p.i < len(p.s) && p.s[p.i] == '{':
		j := strings.IndexByte(p.s[p.i:], '}')
		if j < 0 {
			return fmt.Errorf("unclosed ${")
		}
		p.i += j + 1
	default:
		for p.i < len(p.s) && (p.s[p.i] == '_' || p.s[p.i] >= 'A' && p.s[p.i] <= 'Z' ||
			p.s[p.i] >= 'a' && p.s[p.i] <= 'z' || p.s[p.i] >= '0' && p.s[p.i] <= '9') {
			p.i++
		}
	}
	b.WriteString(p.s[start:p.i])
	return nil
}

func texts(ws []word) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w.text
	}
	return out
}
