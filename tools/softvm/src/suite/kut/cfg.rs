//! kvm-unit-tests' `unittests.cfg`: one `[name]` section per test, then
//! `key = value` lines.
//!
//! Read as kvm-unit-tests' own runner reads it (`for_each_unittest` in its
//! `scripts/common.bash`): each line is taken without its leading and
//! trailing blanks; a line `[NAME]` opens a test; a known key must start
//! the line, with only spaces around its `=`; the value is the rest of the
//! line, kept verbatim (quotes and backticks are the shell's business, see
//! [`super::shell`]); anything else (comments, other runners' keys such as
//! `kvmtool_params`) is ignored. `qemu_params` (alias `extra_params`) may
//! span lines between `"""` markers.
//!
//! ```text
//! [vmexit_ipi]
//! file = vmexit.flat
//! smp = 2
//! test_args = 'ipi'
//! qemu_params = -machine pit=off
//! groups = vmexit
//! ```

use std::fmt;

/// One test of the file, its values as written (unexpanded).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    /// The line of the `[name]` header.
    pub line: usize,
    /// `file =`: the kernel, relative to the file's directory.
    pub file: Option<String>,
    /// `smp =`: the vCPU count, shell text (`$MAX_SMP` is common).
    pub smp: Option<String>,
    /// `test_args =`: the kernel's arguments, shell text given to `-append`.
    pub test_args: Option<String>,
    /// `qemu_params =` / `extra_params =`: QEMU options, shell text; a
    /// multi-line value keeps its newlines (blanks to the shell, and a
    /// backslash before one continues the line).
    pub params: Option<String>,
    /// `groups =`, split on blanks.
    pub groups: Vec<String>,
    pub arch: Option<String>,
    pub machine: Option<String>,
    /// `check =`: blank-separated `path=value` conditions on host files.
    pub check: Option<String>,
    /// `accel =`: the only accelerator the test runs under.
    pub accel: Option<String>,
    /// `timeout =`, as `timeout(1)` takes it (`90`, `90s`, `1.5m`).
    pub timeout: Option<String>,
    /// `disabled_if =`: a shell condition that disables the test.
    pub disabled_if: Option<String>,
}

impl Section {
    pub fn in_group(&self, g: &str) -> bool {
        self.groups.iter().any(|x| x == g)
    }
}

/// A defect of the file that stops the runner (with its line).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CfgError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for CfgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// The keys of one line: `key = value` with only spaces around `=`.
fn key_value(line: &str) -> Option<(&str, &str)> {
    let key_end = line.find([' ', '='])?;
    let (key, rest) = line.split_at(key_end);
    let rest = rest.trim_start_matches(' ').strip_prefix('=')?;
    Some((key, rest.trim_start_matches(' ')))
}

/// The `"""` that ends a multi-line value, with only blanks after it: the
/// text before it, if this line ends the value.
fn closing_quotes(line: &str) -> Option<&str> {
    line.trim_end_matches([' ', '\t']).strip_suffix("\"\"\"")
}

/// Parse the text of a `unittests.cfg`; sections in file order.
pub fn parse(text: &str) -> Result<Vec<Section>, CfgError> {
    let mut sections: Vec<Section> = Vec::new();
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    while let Some((lineno, raw)) = lines.next() {
        let line = raw.trim_matches([' ', '\t']);
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            if let Some(first) = sections.iter().find(|s| s.name == name) {
                return Err(CfgError {
                    line: lineno,
                    message: format!(
                        "a second test [{name}] (the first is at line {})",
                        first.line
                    ),
                });
            }
            sections.push(Section {
                name: name.to_string(),
                line: lineno,
                ..Section::default()
            });
            continue;
        }
        let Some((key, value)) = key_value(line) else {
            continue;
        };
        let multi = matches!(key, "qemu_params" | "extra_params") && value.starts_with("\"\"\"");
        let value = if multi {
            multi_line(&value[3..], lineno, &mut lines)?
        } else {
            value.to_string()
        };
        // Values before the first section belong to no test (kvm-unit-tests'
        // runner discards them too).
        let Some(s) = sections.last_mut() else {
            continue;
        };
        match key {
            "file" => s.file = Some(value),
            "smp" => s.smp = Some(value),
            "test_args" => s.test_args = Some(value),
            "qemu_params" | "extra_params" => s.params = Some(value),
            "groups" => s.groups = value.split_whitespace().map(str::to_string).collect(),
            "arch" => s.arch = Some(value),
            "machine" => s.machine = Some(value),
            "check" => s.check = Some(value),
            "accel" => s.accel = Some(value),
            "timeout" => s.timeout = Some(value),
            "disabled_if" => s.disabled_if = Some(value),
            _ => {}
        }
    }
    Ok(sections)
}

/// The rest of a `"""` value: `first` (after the opening quotes), then whole
/// lines up to the one ending in `"""`, joined by newlines.
fn multi_line<'a>(
    first: &str,
    start: usize,
    lines: &mut impl Iterator<Item = (usize, &'a str)>,
) -> Result<String, CfgError> {
    if let Some(body) = closing_quotes(first) {
        return Ok(body.to_string());
    }
    let mut value = first.to_string();
    for (_, l) in lines.by_ref() {
        value.push('\n');
        if let Some(body) = closing_quotes(l) {
            value.push_str(body);
            return Ok(value);
        }
        value.push_str(l);
    }
    Err(CfgError {
        line: start,
        message: "a \"\"\" value that never ends".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sections written the way kvm-unit-tests' x86 file writes them (the
    /// file's conventions, in text of our own).
    const FIXTURE: &str = include_str!("testdata/unittests.cfg");

    fn by_name<'a>(s: &'a [Section], n: &str) -> &'a Section {
        s.iter()
            .find(|s| s.name == n)
            .unwrap_or_else(|| panic!("no [{n}]"))
    }

    #[test]
    fn the_fixture_reads_as_the_runner_reads_it() {
        let s = parse(FIXTURE).unwrap();
        let names: Vec<&str> = s.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "apic_x2",
                "smp_all",
                "timer_cpuid",
                "timer_ipi",
                "paging",
                "paging_slow",
                "needs_kvm",
                "host_file",
                "only_i386",
                "clock",
                "nested",
                "multi",
                "wide_machine",
                "no_file"
            ]
        );
        let a = by_name(&s, "apic_x2");
        assert_eq!(a.file.as_deref(), Some("apic.flat"));
        assert_eq!(a.smp.as_deref(), Some("2"));
        assert_eq!(
            a.params.as_deref(),
            Some("-cpu qemu64,+x2apic,+tsc-deadline")
        );
        assert_eq!(a.arch.as_deref(), Some("x86_64"));
        assert_eq!(a.timeout.as_deref(), Some("30"));
        assert_eq!(a.groups, ["apic"]);
        assert_eq!(a.line, 10);
        assert_eq!(by_name(&s, "smp_all").smp.as_deref(), Some("$MAX_SMP"));
        assert_eq!(
            by_name(&s, "timer_cpuid").test_args.as_deref(),
            Some("'cpuid'")
        );
        assert_eq!(
            by_name(&s, "timer_ipi").params.as_deref(),
            Some("-machine pit=off")
        );
        let p = by_name(&s, "paging_slow");
        assert_eq!(p.groups, ["paging", "nodefault"]);
        assert!(p.in_group("nodefault") && !p.in_group("paging_slow"));
        assert_eq!(p.timeout.as_deref(), Some("4m"));
        assert_eq!(by_name(&s, "needs_kvm").accel.as_deref(), Some("kvm"));
        assert_eq!(
            by_name(&s, "host_file").check.as_deref(),
            Some("/sys/module/kvm/parameters/enable_pmu=Y /proc/sys/kernel/nmi_watchdog=0")
        );
        assert_eq!(by_name(&s, "only_i386").arch.as_deref(), Some("i386"));
        assert_eq!(
            by_name(&s, "clock").test_args.as_deref(),
            Some("\"10000000 `date +%s`\"")
        );
        // extra_params is the older name of qemu_params.
        assert_eq!(
            by_name(&s, "nested").params.as_deref(),
            Some("-cpu max,+vmx -m 2048")
        );
        assert_eq!(
            by_name(&s, "multi").params.as_deref(),
            Some("-cpu max \\\n-m 256\n-smp 2")
        );
        assert_eq!(by_name(&s, "wide_machine").machine.as_deref(), Some("q35"));
        assert_eq!(by_name(&s, "no_file").file, None);
        // The commented-out section is no test.
        assert!(s.iter().all(|s| s.name != "retired"));
    }

    #[test]
    fn lines_are_trimmed_and_keys_need_spaces_only() {
        let s = parse("  [t]  \n\tfile=t.flat\t\nsmp\t= 3\nfoo = 1\n# smp = 9\n").unwrap();
        assert_eq!(s[0].file.as_deref(), Some("t.flat"));
        // A tab before `=` is no key for the runner's pattern.
        assert_eq!(s[0].smp, None);
        // Keys before the first section belong to nothing.
        let s = parse("file = x.flat\n[t]\n").unwrap();
        assert_eq!(s[0].file, None);
        // A later line replaces an earlier one.
        let s = parse("[t]\nfile = a.flat\nfile = b.flat\n").unwrap();
        assert_eq!(s[0].file.as_deref(), Some("b.flat"));
    }

    #[test]
    fn multi_line_values() {
        let s = parse("[t]\nqemu_params = \"\"\"-m 256\"\"\"\n").unwrap();
        assert_eq!(s[0].params.as_deref(), Some("-m 256"));
        let s = parse("[t]\nextra_params = \"\"\"\n  -cpu max\n\"\"\"  \nfile = t.flat\n").unwrap();
        assert_eq!(s[0].params.as_deref(), Some("\n  -cpu max\n"));
        assert_eq!(s[0].file.as_deref(), Some("t.flat"));
        // Only the QEMU options take multi-line values.
        let s = parse("[t]\ntest_args = \"\"\"a\nfile = t.flat\n").unwrap();
        assert_eq!(s[0].test_args.as_deref(), Some("\"\"\"a"));
    }

    #[test]
    fn defects_name_their_line() {
        let e = parse("[t]\nqemu_params = \"\"\"-m 1\n-smp 2\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.to_string().contains("never ends"), "{e}");
        let e = parse("[a]\n[b]\n[a]\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 3: a second test [a] (the first is at line 1)"
        );
    }
}
