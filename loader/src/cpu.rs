//! The initial vCPU state of both boot contracts, and the GDT that matches
//! the hidden segment state.

use emu_core::{DTable, Regs, Segment, Sregs};

use crate::layout::{APIC_BASE_MSR, GDT_ADDR, GDT_SIZE};

/// Selector of the code segment (GDT entry 1).
pub const CODE_SELECTOR: u16 = 0x08;
/// Selector of the data segment (GDT entry 2).
pub const DATA_SELECTOR: u16 = 0x10;

/// Flat 4 GiB 32-bit code: G=1, D=1, P=1, S=1, type 0xb (execute/read,
/// accessed).
pub const GDT_CODE32: u64 = 0x00cf_9b00_0000_ffff;
/// Flat 64-bit code: G=1, L=1, D=0, P=1, S=1, type 0xb.
pub const GDT_CODE64: u64 = 0x00af_9b00_0000_ffff;
/// Flat 4 GiB data: G=1, B=1, P=1, S=1, type 0x3 (read/write, accessed).
pub const GDT_DATA: u64 = 0x00cf_9300_0000_ffff;

/// CR0.PE.
pub const CR0_PE: u64 = 1 << 0;
/// CR0.ET.
pub const CR0_ET: u64 = 1 << 4;
/// CR0.WP.
pub const CR0_WP: u64 = 1 << 16;
/// CR0.PG.
pub const CR0_PG: u64 = 1 << 31;
/// CR4.PAE.
pub const CR4_PAE: u64 = 1 << 5;
/// EFER.LME.
pub const EFER_LME: u64 = 1 << 8;
/// EFER.LMA.
pub const EFER_LMA: u64 = 1 << 10;
/// RFLAGS with only the always-one bit 1 set (IF clear).
pub const RFLAGS_BOOT: u64 = 0x2;

/// The three GDT entries as guest bytes: null, code (64-bit or 32-bit),
/// data.
pub fn gdt_bytes(long_mode: bool) -> Vec<u8> {
    let code = if long_mode { GDT_CODE64 } else { GDT_CODE32 };
    [0u64, code, GDT_DATA]
        .iter()
        .flat_map(|d| d.to_le_bytes())
        .collect()
}

/// Segment and control registers for either contract, before the CR values.
fn base_sregs(long_mode: bool) -> Sregs {
    let code = if long_mode {
        Segment::flat(CODE_SELECTOR, 0xb, false, true)
    } else {
        Segment::flat(CODE_SELECTOR, 0xb, true, false)
    };
    let data = Segment::flat(DATA_SELECTOR, 0x3, true, false);
    // TR and LDTR as after RESET: no table loaded, a busy TSS / LDT type so
    // that a later LTR or task switch sees well-formed hidden state.
    let tr = Segment {
        limit: 0xffff,
        type_: 0xb,
        present: 1,
        ..Segment::default()
    };
    let ldt = Segment {
        limit: 0xffff,
        type_: 0x2,
        present: 1,
        ..Segment::default()
    };
    Sregs {
        cs: code,
        ds: data,
        es: data,
        fs: data,
        gs: data,
        ss: data,
        tr,
        ldt,
        gdt: DTable {
            base: GDT_ADDR,
            // GDT_SIZE is 24, so the limit fits in u16.
            limit: (GDT_SIZE - 1) as u16,
        },
        // An empty IDT: any exception before the guest loads its own IDT
        // escalates to a triple fault (a clean shutdown exit).
        idt: DTable { base: 0, limit: 0 },
        apic_base: APIC_BASE_MSR,
        ..Sregs::default()
    }
}

/// Multiboot: 32-bit protected mode, paging off.
pub fn multiboot_state(entry: u64, info: u64, stack: u64) -> (Regs, Sregs) {
    let regs = Regs {
        rax: crate::multiboot::BOOTLOADER_MAGIC.into(),
        rbx: info,
        rsp: stack,
        rip: entry,
        rflags: RFLAGS_BOOT,
        ..Regs::default()
    };
    let sregs = Sregs {
        cr0: CR0_PE | CR0_ET,
        ..base_sregs(false)
    };
    (regs, sregs)
}

/// ELF64: long mode on the identity map at `cr3`.
pub fn long_mode_state(entry: u64, cr3: u64, stack: u64) -> (Regs, Sregs) {
    let regs = Regs {
        rip: entry,
        rsp: stack,
        rflags: RFLAGS_BOOT,
        rdi: 0,
        ..Regs::default()
    };
    let sregs = Sregs {
        cr0: CR0_PG | CR0_WP | CR0_ET | CR0_PE,
        cr3,
        cr4: CR4_PAE,
        efer: EFER_LME | EFER_LMA,
        ..base_sregs(true)
    };
    (regs, sregs)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes a code/data descriptor the way the CPU loads it.
    fn decode(d: u64) -> Segment {
        let limit_raw = (d & 0xffff) | ((d >> 32) & 0xf_0000);
        let g = (d >> 55) & 1;
        let limit = if g == 1 {
            (limit_raw << 12) | 0xfff
        } else {
            limit_raw
        };
        Segment {
            base: ((d >> 16) & 0xff_ffff) | (((d >> 56) & 0xff) << 24),
            limit: limit as u32,
            selector: 0,
            type_: ((d >> 40) & 0xf) as u8,
            s: ((d >> 44) & 1) as u8,
            dpl: ((d >> 45) & 3) as u8,
            present: ((d >> 47) & 1) as u8,
            avl: ((d >> 52) & 1) as u8,
            l: ((d >> 53) & 1) as u8,
            db: ((d >> 54) & 1) as u8,
            g: g as u8,
            unusable: 0,
        }
    }

    fn without_selector(mut s: Segment) -> Segment {
        s.selector = 0;
        s
    }

    #[test]
    fn gdt_matches_hidden_state() {
        for long_mode in [false, true] {
            let s = base_sregs(long_mode);
            let gdt = gdt_bytes(long_mode);
            assert_eq!(gdt.len() as u64, GDT_SIZE);
            let entry = |i: usize| {
                let mut b = [0u8; 8];
                b.copy_from_slice(&gdt[i * 8..i * 8 + 8]);
                u64::from_le_bytes(b)
            };
            assert_eq!(entry(0), 0);
            assert_eq!(decode(entry(1)), without_selector(s.cs));
            assert_eq!(decode(entry(2)), without_selector(s.ds));
            assert_eq!(s.cs.selector, CODE_SELECTOR);
            assert_eq!(s.ss.selector, DATA_SELECTOR);
        }
    }

    #[test]
    fn control_registers() {
        let (regs, s) = multiboot_state(0x10_0000, 0x9000, 0x7000);
        assert_eq!(s.cr0, 0x11);
        assert_eq!(regs.rax, 0x2bad_b002);
        assert_eq!(regs.rflags, 2);
        assert_eq!((s.cs.db, s.cs.l, s.cs.type_), (1, 0, 0xb));
        let (regs, s) = long_mode_state(0x10_0000, 0x2000, 0x9_0000);
        assert_eq!(s.cr0, 0x8001_0011);
        assert_eq!(s.cr4, 0x20);
        assert_eq!(s.efer, 0x500);
        assert_eq!(s.cr3, 0x2000);
        assert_eq!((s.cs.db, s.cs.l, s.cs.type_), (0, 1, 0xb));
        assert_eq!((regs.rip, regs.rsp, regs.rdi), (0x10_0000, 0x9_0000, 0));
    }
}
