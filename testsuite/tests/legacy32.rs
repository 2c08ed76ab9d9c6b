//! The forms 64-bit mode dropped, in a 32-bit protected-mode guest: the
//! decimal-arithmetic instructions over every AL and incoming CF/AF (and
//! AAM/AAD over several bases), SALC, BOUND (#BR as a fault), ARPL on a
//! register and on memory, AAM 0 (#DE), and UD0/UD1/UD2 (#UD).
//!
//! The guest writes a table of (AX, FLAGS) results to RAM. On softvm every
//! entry must equal a reference model written here from the SDM's
//! pseudocode, undefined flags included, for a CPU model of each vendor
//! (Intel: OF cleared, SF/ZF/PF from AL, AAM/AAD clearing CF and AF; AMD:
//! the flags of the addition or subtraction the adjustment performs).
//! When /dev/kvm is usable, the same guest runs on the host processor
//! (whose ring-0 instructions KVM's emulator may run): the defined results
//! must match the model. The table also runs on the host CPU itself, in
//! user mode: there every flag must match the model of the host's vendor.

use emu_core::cpu::model::{CpuModel, Vendor};
use testsuite::backend::{load_image, run_guest_with, Backend, RunLimits, SoftvmBackend};

const LOAD: u64 = 0x10_0000;
const IDT: u64 = 0x20_0000;
const RESUME: u64 = 0x20_1000;
const VEC: u64 = 0x20_1004;
const FAULT_EIP: u64 = 0x20_1008;
const DATA: u64 = 0x20_2000;
const STACK: u64 = 0x28_0000;
const OUT: u64 = 0x30_0000;

const CF: u16 = 1;
const PF: u16 = 1 << 2;
const AF: u16 = 1 << 4;
const ZF: u16 = 1 << 6;
const SF: u16 = 1 << 7;
const OF: u16 = 1 << 11;
const ARITH: u16 = CF | PF | AF | ZF | SF | OF;

/// The adjust instructions and the bases of AAM/AAD, in table order.
const ADJUST: [(&str, u8); 4] = [("daa", 0x27), ("das", 0x2f), ("aaa", 0x37), ("aas", 0x3f)];
const BASES: [u8; 4] = [10, 16, 7, 255];

/// One table entry: AX and FLAGS after the instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    ax: u16,
    flags: u16,
}

/// The inputs of entry `i` of a 1024-entry adjust block: AL, AH, and the
/// incoming flags (CF from bit 8, AF from bit 9, OF/SF/ZF/PF set for odd
/// AL so that "unchanged" would show).
fn adjust_input(i: u32) -> (u16, u16) {
    let al = i & 0xff;
    let ah = al ^ 0x5a;
    let mut f = 2 | ((i >> 8) & 1) as u16 | (((i >> 9) & 1) as u16) << 4;
    if al & 1 != 0 {
        f |= OF | SF | ZF | PF;
    }
    ((ah << 8 | al) as u16, f)
}

/// The inputs of entry `i` of a 512-entry AAM/AAD block: all status flags
/// set for the second half.
fn base_input(i: u32, aad: bool) -> (u16, u16) {
    let al = i & 0xff;
    let ah = if aad { (al * 7 + 3) & 0xff } else { al ^ 0x5a };
    let f = if i >= 256 { 2 | ARITH } else { 2 };
    ((ah << 8 | al) as u16, f)
}

fn szp(v: u8) -> u16 {
    let mut f = 0;
    if v == 0 {
        f |= ZF;
    }
    if v & 0x80 != 0 {
        f |= SF;
    }
    if v.count_ones().is_multiple_of(2) {
        f |= PF;
    }
    f
}

/// The status flags of the ADD (or SUB) of `a` and `b`, `bits` wide.
fn alu(bits: u32, a: u32, b: u32, sub: bool) -> u16 {
    let m = (1u32 << bits) - 1;
    let r = if sub {
        a.wrapping_sub(b)
    } else {
        a.wrapping_add(b)
    } & m;
    let sign = 1 << (bits - 1);
    let mut f = if (r as u8).count_ones().is_multiple_of(2) {
        PF
    } else {
        0
    };
    if r == 0 {
        f |= ZF;
    }
    if r & sign != 0 {
        f |= SF;
    }
    if (a ^ b ^ r) & 0x10 != 0 {
        f |= AF;
    }
    let carry = if sub { b > a } else { a + b > m };
    if carry {
        f |= CF;
    }
    let overflow = if sub {
        (a ^ b) & (a ^ r) & sign != 0
    } else {
        !(a ^ b) & (a ^ r) & sign != 0
    };
    if overflow {
        f |= OF;
    }
    f
}

/// The SDM's operations, with the undefined flags of `vendor`'s
/// processors (P6-family Intel ones; AMD: those of the ADD or SUB the
/// adjustment performs, as measured on an AMD EPYC). Returns AX and the
/// status flags.
fn model(op: &str, ax: u16, flags: u16, imm: u8, vendor: Vendor) -> (u16, u16) {
    let (intel_ax, intel_f) = intel_model(op, ax, flags, imm);
    if vendor == Vendor::Intel {
        return (intel_ax, intel_f);
    }
    let (al, ah) = (u32::from(ax as u8), u32::from(ax >> 8));
    let (cf, af) = (flags & CF != 0, flags & AF != 0);
    let f = match op {
        "daa" | "das" => {
            let mut adjust = 0;
            if al & 0x0f > 9 || af {
                adjust = 6;
            }
            if al > 0x99 || cf {
                adjust |= 0x60;
            }
            intel_f | alu(8, al, adjust, op == "das") & OF
        }
        "aaa" | "aas" => {
            let d = if al & 0x0f > 9 || af { 0x106 } else { 0 };
            let of_szp = alu(16, u32::from(ax), d, op == "aas") & (OF | SF | ZF | PF);
            intel_f & (CF | AF) | of_szp
        }
        "aam" => intel_f,
        "aad" => alu(8, al, (ah * u32::from(imm)) & 0xff, false),
        _ => unreachable!("{op}"),
    };
    (intel_ax, f)
}

/// The SDM's operations, with the undefined flags of P6-family Intel
/// processors.
fn intel_model(op: &str, ax: u16, flags: u16, imm: u8) -> (u16, u16) {
    let (al, ah) = (ax as u8, (ax >> 8) as u8);
    let (cf, af) = (flags & CF != 0, flags & AF != 0);
    match op {
        "daa" | "das" => {
            let sub = op == "das";
            let (mut new_al, mut new_cf, mut new_af) = (al, false, false);
            if al & 0x0f > 9 || af {
                let (v, carry) = if sub {
                    al.overflowing_sub(6)
                } else {
                    al.overflowing_add(6)
                };
                new_al = v;
                new_cf = cf || carry;
                new_af = true;
            }
            if al > 0x99 || cf {
                new_al = if sub {
                    new_al.wrapping_sub(0x60)
                } else {
                    new_al.wrapping_add(0x60)
                };
                new_cf = true;
            } else if !sub {
                new_cf = false;
            }
            let f = szp(new_al) | if new_cf { CF } else { 0 } | if new_af { AF } else { 0 };
            ((ax & 0xff00) | u16::from(new_al), f)
        }
        "aaa" | "aas" => {
            if al & 0x0f > 9 || af {
                let v = if op == "aaa" {
                    ax.wrapping_add(0x106)
                } else {
                    ax.wrapping_sub(0x106)
                };
                let v = v & 0xff0f;
                (v, szp(v as u8) | CF | AF)
            } else {
                let v = ax & 0xff0f;
                (v, szp(v as u8))
            }
        }
        "aam" => {
            let (q, r) = (al / imm, al % imm);
            (u16::from(q) << 8 | u16::from(r), szp(r))
        }
        "aad" => {
            let v = al.wrapping_add(ah.wrapping_mul(imm));
            (u16::from(v), szp(v))
        }
        _ => unreachable!("{op}"),
    }
}

/// The flags the manuals leave undefined after `op`.
fn undefined(op: &str) -> u16 {
    match op {
        "daa" | "das" => OF,
        "aaa" | "aas" => OF | SF | ZF | PF,
        _ => OF | AF | CF,
    }
}

/// Every table entry in order: (instruction, imm, input AX, input flags).
fn inputs() -> Vec<(&'static str, u8, u16, u16)> {
    let mut v = Vec::new();
    for (op, _) in ADJUST {
        for i in 0..1024 {
            let (ax, f) = adjust_input(i);
            v.push((op, 0, ax, f));
        }
    }
    for (op, aad) in [("aam", false), ("aad", true)] {
        for b in BASES {
            for i in 0..512 {
                let (ax, f) = base_input(i, aad);
                v.push((op, b, ax, f));
            }
        }
    }
    v
}

/// The misc records after the table, each a 32-bit word.
const MISC: [&str; 12] = [
    "salc cf=0 (al | flags<<16)",
    "salc cf=1",
    "bound in range: vector",
    "bound below: vector",
    "bound above: vector",
    "bound faulting eip is the bound",
    "bound16 above: vector",
    "aam 0: vector",
    "arpl eax,ebx raise: eax",
    "arpl eax,ebx raise: flags",
    "arpl no change: eax | zf<<31",
    "arpl mem: word | zf<<31",
];
const UD_RECORDS: usize = 4;

/// The guest, built with iced-x86's assembler (in a module of its own:
/// its register names would shadow the model's variables).
#[path = "legacy32/code.rs"]
mod code;

/// The CPUID table of the `max` model with `vendor`.
fn cpuid_of(vendor: Vendor) -> Vec<emu_core::CpuidEntry> {
    let name = match vendor {
        Vendor::Intel => "GenuineIntel",
        Vendor::Amd => "AuthenticAMD",
    };
    let model = CpuModel::parse(&format!("max,vendor={name}"))
        .expect("a valid model")
        .model;
    emu_core::cpuid::Cpuid::for_model(&model, 0, 1).entries
}

/// Run the guest on `b` with CPUID `cpuid`; the table entries and the misc
/// records.
fn run_on(
    b: &mut dyn Backend,
    cpuid: &[emu_core::CpuidEntry],
) -> (Vec<Entry>, Vec<u32>, Result<u32, String>) {
    let img = load_image(&code::guest().expect("guest assembles")).expect("guest loads");
    let rec = run_guest_with(b, &img, RunLimits::default(), cpuid).expect("backend runs");
    let n = inputs().len();
    let mut raw = vec![0u8; n * 4 + (MISC.len() + UD_RECORDS) * 4];
    b.read_memory(OUT, &mut raw).expect("table readable");
    let word = |i: usize| u32::from_le_bytes(raw[4 * i..4 * i + 4].try_into().unwrap());
    let entries = (0..n)
        .map(|i| Entry {
            ax: word(i) as u16,
            flags: (word(i) >> 16) as u16,
        })
        .collect();
    let misc = (n..n + MISC.len() + UD_RECORDS).map(word).collect();
    let end = rec.exit_code.ok_or_else(|| {
        format!(
            "no exit code; last exits: {:?}",
            &rec.exits[rec.exits.len().saturating_sub(3)..]
        )
    });
    (entries, misc, end)
}

/// Differences of `got` from `vendor`'s model, ignoring the flags in
/// `ignore` (a per-instruction mask).
fn differences(got: &[Entry], vendor: Vendor, ignore: impl Fn(&str) -> u16) -> Vec<String> {
    let mut out = Vec::new();
    for ((op, imm, ax, f), e) in inputs().into_iter().zip(got) {
        let (want_ax, want_f) = model(op, ax, f, imm, vendor);
        let mask = ARITH & !ignore(op);
        if e.ax != want_ax || e.flags & mask != want_f & mask {
            out.push(format!(
                "{op} {imm:3} ax={ax:04x} flags={f:03x}: got ax={:04x} flags={:03x}, model ax={want_ax:04x} flags={want_f:03x}",
                e.ax,
                e.flags & ARITH
            ));
        }
    }
    out
}

fn check_misc(misc: &[u32], who: &str) {
    let salc0 = misc[0];
    let salc1 = misc[1];
    assert_eq!(salc0 & 0xff, 0, "{who}: SALC with CF clear");
    assert_eq!(salc1 & 0xff, 0xff, "{who}: SALC with CF set");
    assert_eq!(
        (salc0 >> 16) as u16 & ARITH,
        ARITH & !CF,
        "{who}: SALC keeps flags"
    );
    assert_eq!(&misc[2..5], &[0xff, 5, 5], "{who}: BOUND vectors");
    assert_eq!(misc[5], 1, "{who}: #BR is a fault at the BOUND");
    assert_eq!(misc[6], 5, "{who}: BOUND r16");
    assert_eq!(misc[7], 0, "{who}: AAM 0 is #DE");
    assert_eq!(misc[8] & 0xffff, 0x0013, "{who}: ARPL raises RPL");
    assert_eq!(misc[9] as u16 & ZF, ZF, "{who}: ARPL sets ZF");
    assert_eq!(misc[10], 0x13, "{who}: ARPL without change clears ZF");
    assert_eq!(misc[11], 0x8000_000b, "{who}: ARPL on memory");
    assert_eq!(&misc[12..16], &[6, 6, 6, 6], "{who}: UD0/UD1/UD2 are #UD");
}

#[test]
fn legacy_forms_in_32_bit_mode_match_the_sdm_model() {
    for vendor in [Vendor::Intel, Vendor::Amd] {
        let mut soft = SoftvmBackend::new(50_000_000).expect("softvm backend");
        let (entries, misc, code) = run_on(&mut soft, &cpuid_of(vendor));
        assert_eq!(code, Ok(0), "guest ended badly ({vendor:?})");
        let diff = differences(&entries, vendor, |_| 0);
        assert!(
            diff.is_empty(),
            "{vendor:?}: {} entries differ from the model, first:\n{}",
            diff.len(),
            diff[..diff.len().min(20)].join("\n")
        );
        check_misc(&misc, "softvm");
        assert_eq!(misc[8] >> 16, 0xabcd, "ARPL r32 keeps bits 16..31");
        println!(
            "legacy32 ({vendor:?} model): {} entries and {} records as modelled",
            entries.len(),
            misc.len()
        );
    }
}

#[test]
fn legacy_forms_on_the_host_through_kvm() {
    if let Err(why) = testsuite::kvm::available() {
        println!("skipping the /dev/kvm run: {why}");
        return;
    }
    #[cfg(target_os = "linux")]
    {
        let mut k = testsuite::kvm::KvmBackend::new(std::time::Duration::from_secs(60))
            .expect("kvm backend");
        let (entries, misc, code) = run_on(&mut k, &testsuite::backend::cpuid_model());
        match code {
            Ok(0) => {}
            Err(e) if e.contains("InternalError") => {
                println!("KVM could not run the guest (its emulator): {e}");
                return;
            }
            other => panic!("guest ended badly on KVM: {other:?}"),
        }
        let vendor = Vendor::host();
        let diff = differences(&entries, vendor, undefined);
        assert!(
            diff.is_empty(),
            "{} defined results differ from the host, first:\n{}",
            diff.len(),
            diff[..diff.len().min(20)].join("\n")
        );
        check_misc(&misc, "host");
        println!("KVM's host undefined flags against the {vendor:?} model:");
        summarize(&entries, vendor);
        println!("host ARPL r32 upper bits: {:#06x}", misc[8] >> 16);
        if std::env::var_os("LEGACY32_DUMP").is_some() {
            for d in differences(&entries, vendor, |_| 0) {
                println!("{d}");
            }
        }
    }
}

/// The table on the host processor, in user mode: the table code runs in
/// compatibility mode (Linux's 32-bit user code segment 0x23), reached by
/// a far jump from a 64-bit trampoline in memory below 2 GiB. It runs in a
/// forked child, so a kernel without 32-bit segments costs a skip, not the
/// test process.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
#[path = "legacy32/host.rs"]
mod host;

/// The decimal-adjust table on the host CPU itself (ring 3, compatibility
/// mode): every result and flag, undefined ones included, must match the
/// model of the host's vendor and emu-core's kernels for that vendor.
#[test]
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn decimal_arithmetic_on_the_host_cpu() {
    let n = inputs().len();
    let entries = match host::table(n) {
        Ok(t) => t,
        Err(why) => {
            println!("skipping the host run: {why}");
            return;
        }
    };
    let vendor = Vendor::host();
    println!("host ({vendor:?}) undefined flags against the {vendor:?} model:");
    summarize(&entries, vendor);
    let diff = differences(&entries, vendor, |_| 0);
    assert!(
        diff.is_empty(),
        "{} results differ from the {vendor:?} model on the host, first:\n{}",
        diff.len(),
        diff[..diff.len().min(20)].join("\n")
    );
    for ((op, imm, ax, f), e) in inputs().into_iter().zip(&entries) {
        let got = emu_kernel(op, imm, ax, f, vendor);
        assert_eq!(
            got,
            (e.ax, e.flags & ARITH),
            "emu-core's {op} {imm} of ax={ax:04x} flags={f:03x} ({vendor:?})"
        );
    }
    if std::env::var_os("LEGACY32_DUMP").is_some() {
        for ((op, imm, in_ax, in_f), e) in inputs().into_iter().zip(&entries) {
            println!(
                "DUMP {op} {imm} {in_ax:04x} {in_f:03x} {:04x} {:03x}",
                e.ax,
                e.flags & ARITH
            );
        }
    }
}

/// emu-core's kernel for one table entry: AX and the status flags.
fn emu_kernel(op: &str, imm: u8, ax: u16, f: u16, vendor: Vendor) -> (u16, u16) {
    use emu_core::ops::bcd;
    let (cf, af) = (f & CF != 0, f & AF != 0);
    let r = match op {
        "daa" | "das" => bcd::decimal_adjust(ax, cf, af, op == "das", vendor),
        "aaa" | "aas" => bcd::ascii_adjust(ax, af, op == "aas", vendor),
        "aam" => bcd::aam_result(ax, imm),
        _ => bcd::aad_result(ax, imm, vendor),
    };
    (r.ax, r.flags as u16)
}

fn summarize(entries: &[Entry], vendor: Vendor) {
    let ins = inputs();
    for op in ["daa", "das", "aaa", "aas", "aam", "aad"] {
        let mut per_flag = Vec::new();
        for (name, bit) in [
            ("CF", CF),
            ("PF", PF),
            ("AF", AF),
            ("ZF", ZF),
            ("SF", SF),
            ("OF", OF),
        ] {
            if undefined(op) & bit == 0 {
                continue;
            }
            let (mut n, mut differ) = (0, 0);
            for ((o, imm, in_ax, in_f), e) in ins.iter().zip(entries) {
                if *o != op {
                    continue;
                }
                n += 1;
                if e.flags & bit != model(o, *in_ax, *in_f, *imm, vendor).1 & bit {
                    differ += 1;
                }
            }
            per_flag.push(format!("{name} differs in {differ}/{n}"));
        }
        println!("  {op}: {}", per_flag.join(", "));
    }
}
