//! The dispatch table: one optional handler per iced-x86 `Code`, built once
//! from the `(Code, handler)` lists each instruction family registers.

use super::Handler;
use iced_x86::{Code, EncodingKind, Mnemonic};
use std::sync::OnceLock;

/// Per-`Code` data.
#[derive(Clone, Copy)]
struct Entry {
    handler: Handler,
    /// The family (ops module) that registered it.
    family: &'static str,
    /// RFLAGS status bits the manuals leave undefined after this
    /// instruction (softvm still computes them deterministically).
    undefined_flags: u64,
}

/// Collects registrations from the family modules.
pub struct TableBuilder {
    entries: Vec<Option<Entry>>,
    family: &'static str,
    /// Codes registered more than once (a bug; checked by a unit test).
    pub duplicates: Vec<Code>,
}

impl TableBuilder {
    fn new() -> Self {
        TableBuilder {
            entries: vec![None; Code::values().count()],
            family: "",
            duplicates: Vec::new(),
        }
    }

    /// Name the family whose registrations follow.
    pub fn family(&mut self, name: &'static str) {
        self.family = name;
    }

    /// Register one `Code`.
    pub fn add(&mut self, code: Code, handler: Handler, undefined_flags: u64) {
        let slot = &mut self.entries[code as usize];
        if slot.is_some() {
            self.duplicates.push(code);
            return;
        }
        *slot = Some(Entry {
            handler,
            family: self.family,
            undefined_flags,
        });
    }

    /// Register every legacy-encoded `Code` of a mnemonic for which
    /// `filter` holds.
    pub fn mnemonic_where(
        &mut self,
        m: Mnemonic,
        handler: Handler,
        undefined_flags: u64,
        filter: impl Fn(Code) -> bool,
    ) {
        for code in all_codes() {
            if code.mnemonic() == m && filter(code) {
                self.add(code, handler, undefined_flags);
            }
        }
    }

    /// Register every legacy-encoded `Code` of a mnemonic.
    pub fn mnemonic(&mut self, m: Mnemonic, handler: Handler, undefined_flags: u64) {
        self.mnemonic_where(m, handler, undefined_flags, |_| true);
    }

    /// Register every VEX-encoded `Code` of a mnemonic (BMI1/BMI2).
    pub fn vex(&mut self, m: Mnemonic, handler: Handler, undefined_flags: u64) {
        for code in Code::values() {
            if code.mnemonic() == m && code.encoding() == EncodingKind::VEX {
                self.add(code, handler, undefined_flags);
            }
        }
    }
}

/// All legacy-encoded codes (no VEX/EVEX/XOP/3DNow!).
pub fn all_codes() -> impl Iterator<Item = Code> {
    Code::values().filter(|c| c.encoding() == EncodingKind::Legacy)
}

struct Table {
    entries: Vec<Option<Entry>>,
    duplicates: Vec<Code>,
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut b = TableBuilder::new();
        crate::ops::register_all(&mut b);
        Table {
            entries: b.entries,
            duplicates: b.duplicates,
        }
    })
}

/// The handler for `code`, if softvm implements it.
#[inline]
pub fn handler(code: Code) -> Option<Handler> {
    table().entries[code as usize].map(|e| e.handler)
}

/// RFLAGS status bits undefined after `code`, if implemented.
pub fn undefined_flags(code: Code) -> Option<u64> {
    table().entries[code as usize].map(|e| e.undefined_flags)
}

/// Every implemented `Code`.
pub fn implemented_codes() -> Vec<Code> {
    Code::values()
        .filter(|&c| table().entries[c as usize].is_some())
        .collect()
}

/// Implemented mnemonics by family, in registration order of families and
/// alphabetical order within one (for the README's instruction list).
pub fn implemented_by_family() -> Vec<(&'static str, Vec<String>)> {
    let mut out: Vec<(&'static str, Vec<String>)> = Vec::new();
    for code in Code::values() {
        if let Some(e) = table().entries[code as usize] {
            let m = format!("{:?}", code.mnemonic()).to_uppercase();
            match out.iter_mut().find(|(f, _)| *f == e.family) {
                Some((_, v)) => {
                    if !v.contains(&m) {
                        v.push(m)
                    }
                }
                None => out.push((e.family, vec![m])),
            }
        }
    }
    for (_, v) in &mut out {
        v.sort();
    }
    out
}

/// Codes that two families both registered.
pub fn duplicate_registrations() -> &'static [Code] {
    &table().duplicates
}

#[cfg(test)]
mod tests {
    #[test]
    fn no_code_registered_twice() {
        assert_eq!(super::duplicate_registrations(), &[] as &[iced_x86::Code]);
    }

    #[test]
    fn table_is_not_empty() {
        assert!(super::implemented_codes().len() > 300);
    }
}
