//! The shell words of a test's options.
//!
//! kvm-unit-tests' runner pastes `-smp SMP`, `-append TEST_ARGS` and the
//! QEMU options into one command line and `eval`s it, so the values of
//! `unittests.cfg` are shell text: quotes group (`test_args = "a b"` is one
//! argument), backticks and `$(...)` run commands (`kvmclock_test` passes
//! `` `date +%s` ``), `$MAX_SMP` and `$((...))` expand, an unquoted result is
//! split on blanks, and `#` at the start of a word comments out the rest of
//! the line. This module does that part of the shell: [`lex`] splits the
//! text into words once, when the file is read; [`expand`] runs the
//! commands when the test starts (through `sh -c`, in the tree's
//! directory), as the runner does. Pipes, redirections and `;` are refused:
//! no test needs them and they would not mean the same here. Glob
//! characters stay literal, and a newline (in a `"""` value) separates
//! words like a blank, as the file format's documentation intends.

use std::fmt;

/// A part of a word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    /// Text taken as written; `quoted` text is never split or removed.
    Text { text: String, quoted: bool },
    /// `` `cmd` `` or `$(cmd)`.
    Command { cmd: String, quoted: bool },
    /// `$NAME` or `${NAME}`.
    Var { name: String, quoted: bool },
    /// `$((expr))`.
    Arith { expr: String, quoted: bool },
}

/// One word before expansion.
pub type Word = Vec<Piece>;

/// Shell text this module does not take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LexError(pub String);

impl fmt::Display for LexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(m: impl Into<String>) -> Result<T, LexError> {
    Err(LexError(m.into()))
}

/// What expansion needs from its surroundings.
pub trait Env {
    /// The value of a variable (`None`: unset, which expands to nothing).
    fn var(&self, name: &str) -> Option<String>;
    /// The standard output of a command, as command substitution takes it.
    fn run(&self, cmd: &str) -> Result<String, String>;
}

struct Lexer<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
}

impl Lexer<'_> {
    fn next(&mut self) -> Option<char> {
        self.chars.next()
    }

    fn peek(&mut self) -> Option<char> {
        self.chars.peek().copied()
    }

    /// Up to the closing backtick; `\$`, `` \` `` and `\\` lose their
    /// backslash, as inside backticks in the shell.
    fn backticks(&mut self) -> Result<String, LexError> {
        let mut cmd = String::new();
        loop {
            match self.next() {
                None => return err("a ` that never closes"),
                Some('`') => return Ok(cmd),
                Some('\\') => match self.next() {
                    Some(c @ ('$' | '`' | '\\')) => cmd.push(c),
                    Some(c) => {
                        cmd.push('\\');
                        cmd.push(c);
                    }
                    None => return err("a ` that never closes"),
                },
                Some(c) => cmd.push(c),
            }
        }
    }

    /// Up to the `)` that closes `depth` already consumed `(`s, quotes
    /// kept (the inner closing parentheses are part of the text).
    fn balanced(&mut self, what: &str, mut depth: usize) -> Result<String, LexError> {
        let mut text = String::new();
        let mut quote = None;
        while let Some(c) = self.next() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (None, '\'' | '"') => quote = Some(c),
                (None, '(') => depth += 1,
                (None, ')') => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(text);
                    }
                }
                _ => {}
            }
            text.push(c);
        }
        err(format!("a {what} that never closes"))
    }

    /// After a `$`: the expansion it starts, or `None` for a literal `$`.
    fn dollar(&mut self, quoted: bool) -> Result<Option<Piece>, LexError> {
        match self.peek() {
            Some('(') => {
                self.next();
                if self.peek() == Some('(') {
                    self.next();
                    let inner = self.balanced("$((", 2)?;
                    let expr = inner
                        .strip_suffix(')')
                        .ok_or_else(|| LexError("$(( must close with ))".into()))?;
                    return Ok(Some(Piece::Arith {
                        expr: expr.to_string(),
                        quoted,
                    }));
                }
                let cmd = self.balanced("$(", 1)?;
                Ok(Some(Piece::Command { cmd, quoted }))
            }
            Some('{') => {
                self.next();
                let mut name = String::new();
                loop {
                    match self.next() {
                        Some('}') => break,
                        Some(c) => name.push(c),
                        None => return err("a ${ that never closes"),
                    }
                }
                if !is_name(&name) {
                    return err(format!("${{{name}}}: only ${{NAME}} is supported"));
                }
                Ok(Some(Piece::Var { name, quoted }))
            }
            Some(c) if c == '_' || c.is_ascii_alphabetic() => {
                let mut name = String::new();
                while let Some(c) = self
                    .peek()
                    .filter(|c| *c == '_' || c.is_ascii_alphanumeric())
                {
                    name.push(c);
                    self.next();
                }
                Ok(Some(Piece::Var { name, quoted }))
            }
            Some(c @ ('\'' | '0'..='9' | '@' | '*' | '#' | '?' | '$' | '!' | '-'))
                if !quoted || c != '\'' =>
            {
                err(format!("${c}: not supported here"))
            }
            _ => Ok(None),
        }
    }

    /// The inside of `"..."`, its opening quote consumed.
    fn double_quoted(&mut self, word: &mut Word) -> Result<(), LexError> {
        let mut text = String::new();
        let flush = |text: &mut String, word: &mut Word| {
            word.push(Piece::Text {
                text: std::mem::take(text),
                quoted: true,
            });
        };
        loop {
            match self.next() {
                None => return err("a \" that never closes"),
                Some('"') => break,
                Some('\\') => match self.next() {
                    Some('\n') => {}
                    Some(c @ ('$' | '`' | '"' | '\\')) => text.push(c),
                    Some(c) => {
                        text.push('\\');
                        text.push(c);
                    }
                    None => return err("a \" that never closes"),
                },
                Some('`') => {
                    flush(&mut text, word);
                    let cmd = self.backticks()?;
                    word.push(Piece::Command { cmd, quoted: true });
                }
                Some('$') => match self.dollar(true)? {
                    Some(p) => {
                        flush(&mut text, word);
                        word.push(p);
                    }
                    None => text.push('$'),
                },
                Some(c) => text.push(c),
            }
        }
        // Even "" is a (empty) word.
        flush(&mut text, word);
        Ok(())
    }
}

fn is_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && c.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n')
}

/// Split shell text into words.
pub fn lex(text: &str) -> Result<Vec<Word>, LexError> {
    let mut lx = Lexer {
        chars: text.chars().peekable(),
    };
    let mut words = Vec::new();
    let mut word: Option<Word> = None;
    let push_text = |word: &mut Option<Word>, c: char, quoted: bool| {
        let w = word.get_or_insert_with(Vec::new);
        match w.last_mut() {
            Some(Piece::Text { text, quoted: q }) if *q == quoted => text.push(c),
            _ => w.push(Piece::Text {
                text: c.to_string(),
                quoted,
            }),
        }
    };
    while let Some(c) = lx.next() {
        match c {
            c if is_blank(c) => {
                if let Some(w) = word.take() {
                    words.push(w);
                }
            }
            '#' if word.is_none() => {
                while lx.peek().is_some_and(|c| c != '\n') {
                    lx.next();
                }
            }
            '\\' => match lx.next() {
                Some('\n') => {}
                Some(c) => push_text(&mut word, c, true),
                None => push_text(&mut word, '\\', false),
            },
            '\'' => {
                let mut text = String::new();
                loop {
                    match lx.next() {
                        Some('\'') => break,
                        Some(c) => text.push(c),
                        None => return err("a ' that never closes"),
                    }
                }
                word.get_or_insert_with(Vec::new)
                    .push(Piece::Text { text, quoted: true });
            }
            '"' => lx.double_quoted(word.get_or_insert_with(Vec::new))?,
            '`' => {
                let cmd = lx.backticks()?;
                word.get_or_insert_with(Vec::new)
                    .push(Piece::Command { cmd, quoted: false });
            }
            '$' => match lx.dollar(false)? {
                Some(p) => word.get_or_insert_with(Vec::new).push(p),
                None => push_text(&mut word, '$', false),
            },
            '|' | '&' | ';' | '<' | '>' | '(' | ')' => {
                return err(format!("the shell operator {c:?} is not supported here"))
            }
            c => push_text(&mut word, c, false),
        }
    }
    if let Some(w) = word {
        words.push(w);
    }
    Ok(words)
}

/// The arguments the words stand for: expansions done, unquoted results
/// split on blanks (and dropped when empty), quotes removed.
pub fn expand(words: &[Word], env: &dyn Env) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for w in words {
        let mut cur: Option<String> = None;
        for p in w {
            let (value, quoted) = match p {
                Piece::Text { text, quoted } => (text.clone(), *quoted),
                Piece::Var { name, quoted } => (env.var(name).unwrap_or_default(), *quoted),
                Piece::Command { cmd, quoted } => {
                    let mut o = env.run(cmd)?;
                    // Command substitution drops trailing newlines.
                    o.truncate(o.trim_end_matches('\n').len());
                    (o, *quoted)
                }
                Piece::Arith { expr, quoted } => {
                    (env.run(&format!("printf '%s' \"$(({expr}))\""))?, *quoted)
                }
            };
            let literal = matches!(p, Piece::Text { .. });
            if quoted || literal {
                cur.get_or_insert_with(String::new).push_str(&value);
                continue;
            }
            for c in value.chars() {
                if is_blank(c) {
                    out.extend(cur.take());
                } else {
                    cur.get_or_insert_with(String::new).push(c);
                }
            }
        }
        out.extend(cur);
    }
    Ok(out)
}

/// `s` quoted for a shell, where it needs quotes (for logs a user can
/// paste into a terminal).
pub fn quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_=+,./:@%".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// Variables from a list; commands answered from a list and recorded.
    struct Fake {
        vars: Vec<(&'static str, &'static str)>,
        outputs: Vec<(&'static str, &'static str)>,
        ran: RefCell<Vec<String>>,
    }

    impl Env for Fake {
        fn var(&self, name: &str) -> Option<String> {
            self.vars
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        }
        fn run(&self, cmd: &str) -> Result<String, String> {
            self.ran.borrow_mut().push(cmd.to_string());
            self.outputs
                .iter()
                .find(|(c, _)| *c == cmd)
                .map(|(_, o)| o.to_string())
                .ok_or_else(|| format!("unexpected command {cmd:?}"))
        }
    }

    fn fake() -> Fake {
        Fake {
            vars: vec![("MAX_SMP", "4"), ("TWO", "a  b")],
            outputs: vec![
                ("date +%s", "1765000000\n"),
                ("echo x y", "x y\n\n"),
                ("printf '%s' \"$(($MAX_SMP / 2))\"", "2"),
                ("true", ""),
            ],
            ran: RefCell::new(Vec::new()),
        }
    }

    fn words(text: &str) -> Vec<String> {
        expand(&lex(text).unwrap(), &fake()).unwrap()
    }

    #[test]
    fn quotes_group_and_go() {
        assert_eq!(words("-append 'cpuid'"), ["-append", "cpuid"]);
        assert_eq!(
            words(r#"-append "a b" c\ d 'e"f' "g\"h\\i\j""#),
            ["-append", "a b", "c d", "e\"f", "g\"h\\i\\j"]
        );
        assert_eq!(words("x '' \"\" y"), ["x", "", "", "y"]);
        assert_eq!(words("a'b'\"c\"d"), ["abcd"]);
        // A """ value's newlines separate words; backslash-newline joins.
        assert_eq!(
            words("\n-cpu max \\\n-m 256\n-smp 2\n"),
            ["-cpu", "max", "-m", "256", "-smp", "2"]
        );
    }

    #[test]
    fn comments_end_at_the_line() {
        assert_eq!(words("-append 'x' # a comment -m 4"), ["-append", "x"]);
        assert_eq!(words("a#b # c\nd"), ["a#b", "d"]);
        assert_eq!(words("'# not'"), ["# not"]);
    }

    #[test]
    fn expansions() {
        assert_eq!(words("-smp $MAX_SMP"), ["-smp", "4"]);
        assert_eq!(words("-smp ${MAX_SMP}0"), ["-smp", "40"]);
        assert_eq!(words("$UNSET x"), ["x"]);
        assert_eq!(words("\"$UNSET\" x"), ["", "x"]);
        assert_eq!(words("$TWO \"$TWO\""), ["a", "b", "a  b"]);
        assert_eq!(
            words("-append \"10000000 `date +%s`\""),
            ["-append", "10000000 1765000000"]
        );
        assert_eq!(words("`echo x y`"), ["x", "y"]);
        assert_eq!(words("\"$(echo x y)\""), ["x y"]);
        assert_eq!(words("`true` z"), ["z"]);
        assert_eq!(words("-smp $(($MAX_SMP / 2))"), ["-smp", "2"]);
        assert_eq!(words("cost\\$ 5$"), ["cost$", "5$"]);
    }

    #[test]
    fn commands_run_at_expansion_only() {
        let w = lex("-append \"`date +%s`\"").unwrap();
        let f = fake();
        assert!(f.ran.borrow().is_empty());
        expand(&w, &f).unwrap();
        expand(&w, &f).unwrap();
        assert_eq!(*f.ran.borrow(), ["date +%s", "date +%s"]);
    }

    #[test]
    fn what_is_refused() {
        for (text, want) in [
            ("'open", "never closes"),
            ("\"open", "never closes"),
            ("`open", "never closes"),
            ("$(open", "never closes"),
            ("a | b", "'|'"),
            ("a > f", "'>'"),
            ("a; b", "';'"),
            ("${X:-y}", "only ${NAME}"),
            ("$1", "$1"),
            ("$'\\n'", "$'"),
        ] {
            let e = lex(text).unwrap_err();
            assert!(e.0.contains(want), "{text}: {e}");
        }
        let e = expand(&lex("`nope`").unwrap(), &fake()).unwrap_err();
        assert!(e.contains("nope"), "{e}");
    }

    #[test]
    fn quoting_for_logs() {
        assert_eq!(quote("-cpu"), "-cpu");
        assert_eq!(quote("qemu64,+x2apic"), "qemu64,+x2apic");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(quote(""), "''");
    }
}
