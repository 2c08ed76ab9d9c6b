//! The ACPI tables of a machine, read back from its guest memory the way
//! an operating system or kvm-unit-tests' `lib/acpi.c` finds them: the
//! RSDP by scanning the BIOS area on 16-byte boundaries, then the RSDT and
//! XSDT, the FADT with its FACS and DSDT, and the MADT. Every checksum is
//! verified and every field checked against the machine's configuration.
//! The reader here is written from the specification, apart from the
//! builder.

use softmmu::Gpa;
use softvm_machine::{Machine, MachineConfig};

struct Mem<'a>(&'a softmmu::GuestMemory);

impl Mem<'_> {
    fn bytes(&self, at: u64, len: usize) -> Vec<u8> {
        let mut b = vec![0; len];
        self.0.read_phys(Gpa::new(at), &mut b).unwrap();
        b
    }
    fn u8(&self, at: u64) -> u8 {
        self.bytes(at, 1)[0]
    }
    fn u32(&self, at: u64) -> u32 {
        u32::from_le_bytes(self.bytes(at, 4).try_into().unwrap())
    }
    fn u64(&self, at: u64) -> u64 {
        u64::from_le_bytes(self.bytes(at, 8).try_into().unwrap())
    }
    /// A system description table at `at`: checks its signature, length
    /// and checksum, returns its bytes.
    fn table(&self, at: u64, sig: &[u8; 4]) -> Vec<u8> {
        let head = self.bytes(at, 36);
        assert_eq!(&head[..4], sig, "table at {at:#x}");
        let len = u32::from_le_bytes(head[4..8].try_into().unwrap()) as usize;
        let t = self.bytes(at, len);
        assert_eq!(sum(&t), 0, "{} checksum", String::from_utf8_lossy(sig));
        assert_eq!(&t[10..16], b"SOFTVM");
        t
    }
}

fn sum(b: &[u8]) -> u8 {
    b.iter().fold(0u8, |s, &x| s.wrapping_add(x))
}

fn le32(t: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(t[off..off + 4].try_into().unwrap())
}

fn le64(t: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(t[off..off + 8].try_into().unwrap())
}

/// A Generic Address Structure: (space, bit width, address).
fn gas(t: &[u8], off: usize) -> (u8, u8, u64) {
    (t[off], t[off + 1], le64(t, off + 4))
}

/// The RSDP found by the standard scan of 0xe0000..0x100000.
fn find_rsdp(m: &Mem<'_>) -> u64 {
    let found: Vec<u64> = (0xe_0000u64..0x10_0000)
        .step_by(16)
        .filter(|&a| m.bytes(a, 8) == b"RSD PTR ")
        .collect();
    assert_eq!(found.len(), 1, "{found:x?}");
    found[0]
}

fn check(vcpus: u32) {
    let cfg = MachineConfig {
        vcpus,
        ..MachineConfig::default()
    };
    let machine = Machine::new(&cfg).unwrap();
    let m = Mem(machine.vm().memory());
    let rsdp = find_rsdp(&m);
    let r = m.bytes(rsdp, 36);
    assert_eq!(sum(&r[..20]), 0, "RSDP checksum");
    assert_eq!(sum(&r), 0, "RSDP extended checksum");
    assert_eq!(r[15], 2, "revision");
    assert_eq!(le32(&r, 20), 36, "length");

    // The RSDT and XSDT list the same tables.
    let rsdt = m.table(le32(&r, 16).into(), b"RSDT");
    let xsdt = m.table(le64(&r, 24), b"XSDT");
    let from_rsdt: Vec<u64> = rsdt[36..].chunks(4).map(|c| le32(c, 0).into()).collect();
    let from_xsdt: Vec<u64> = xsdt[36..].chunks(8).map(|c| le64(c, 0)).collect();
    assert_eq!(from_rsdt, from_xsdt);
    let sigs: Vec<Vec<u8>> = from_xsdt.iter().map(|&a| m.bytes(a, 4)).collect();
    assert_eq!(
        sigs,
        [b"FACP".to_vec(), b"APIC".to_vec()],
        "no HPET: there is none"
    );

    // FADT.
    let f = m.table(from_xsdt[0], b"FACP");
    assert_eq!((f.len(), f[8]), (244, 3), "length, revision");
    let facs = u64::from(le32(&f, 36));
    let dsdt = u64::from(le32(&f, 40));
    assert_eq!(le64(&f, 140), dsdt, "X_DSDT");
    assert_eq!(
        le64(&f, 132),
        0,
        "X_FIRMWARE_CTRL is 0 when FIRMWARE_CTRL is set"
    );
    assert_eq!(u16::from_le_bytes([f[46], f[47]]), 9, "SCI_INT");
    assert_eq!((le32(&f, 48), f[52], f[53]), (0xb2, 0xf1, 0xf0), "SMI_CMD");
    assert_eq!(
        [
            le32(&f, 56),
            le32(&f, 60),
            le32(&f, 64),
            le32(&f, 68),
            le32(&f, 72),
            le32(&f, 76),
            le32(&f, 80)
        ],
        [0x600, 0, 0x604, 0, 0, 0x608, 0xafe0],
        "PM1a_EVT, PM1b_EVT, PM1a_CNT, PM1b_CNT, PM2_CNT, PM_TMR, GPE0"
    );
    assert_eq!(&f[88..94], &[4, 2, 0, 4, 4, 0], "block lengths");
    assert_eq!(f[108], 0x32, "CENTURY");
    let flags = le32(&f, 112);
    assert_eq!(flags & (1 << 8), 0, "TMR_VAL_EXT: a 24-bit PM timer");
    assert_ne!(flags & (1 << 10), 0, "RESET_REG_SUP");
    assert_eq!(
        flags & (1 << 18) != 0,
        vcpus > 8,
        "FORCE_APIC_CLUSTER_MODEL"
    );
    assert_eq!(gas(&f, 116), (1, 8, 0xcf9), "RESET_REG");
    assert_eq!(f[128], 6, "RESET_VALUE");
    assert_eq!(gas(&f, 148), (1, 32, 0x600), "X_PM1a_EVT_BLK");
    assert_eq!(gas(&f, 172), (1, 16, 0x604), "X_PM1a_CNT_BLK");
    assert_eq!(gas(&f, 208), (1, 32, 0x608), "X_PM_TMR_BLK");
    assert_eq!(gas(&f, 220), (1, 32, 0xafe0), "X_GPE0_BLK");

    // FACS: 64-byte aligned, no checksum, waking vectors clear.
    assert_eq!(facs % 64, 0);
    assert_eq!(m.bytes(facs, 4), b"FACS");
    assert_eq!(m.u32(facs + 4), 64);
    assert_eq!((m.u32(facs + 12), m.u64(facs + 24)), (0, 0));
    assert_eq!(m.u8(facs + 32), 2, "version");

    // DSDT: the sleep states, SLP_TYP 1 for S3 and 0 for S5.
    let d = m.table(dsdt, b"DSDT");
    let aml = &d[36..];
    let package = |name: &[u8; 4]| -> Vec<u8> {
        let at = aml
            .windows(5)
            .position(|w| w[0] == 0x08 && &w[1..] == name)
            .unwrap();
        aml[at + 5..at + 5 + 7].to_vec()
    };
    assert_eq!(package(b"_S3_"), [0x12, 6, 4, 1, 1, 0, 0]);
    assert_eq!(package(b"_S5_"), [0x12, 6, 4, 0, 0, 0, 0]);

    // MADT.
    let t = m.table(from_xsdt[1], b"APIC");
    assert_eq!((le32(&t, 36), le32(&t, 40)), (0xfee0_0000, 1));
    let mut lapics = Vec::new();
    let mut ioapics = Vec::new();
    let mut overrides = Vec::new();
    let mut nmis = Vec::new();
    let mut at = 44;
    while at < t.len() {
        let (ty, len) = (t[at], usize::from(t[at + 1]));
        let e = &t[at..at + len];
        match (ty, len) {
            (0, 8) => lapics.push((e[2], e[3], le32(e, 4))),
            (1, 12) => ioapics.push((e[2], le32(e, 4), le32(e, 8))),
            (2, 10) => overrides.push((e[2], e[3], le32(e, 4), u16::from_le_bytes([e[8], e[9]]))),
            (4, 6) => nmis.push((e[2], u16::from_le_bytes([e[3], e[4]]), e[5])),
            other => panic!("unexpected MADT entry {other:?}"),
        }
        at += len;
    }
    assert_eq!(at, t.len());
    let want: Vec<(u8, u8, u32)> = (0..vcpus).map(|i| (i as u8, i as u8, 1)).collect();
    assert_eq!(lapics, want, "one enabled local APIC per vCPU");
    assert_eq!(ioapics, [(0, 0xfec0_0000, 0)]);
    assert_eq!(
        overrides,
        [
            (0, 0, 2, 0),
            (0, 5, 5, 0xd),
            (0, 9, 9, 0xd),
            (0, 10, 10, 0xd),
            (0, 11, 11, 0xd)
        ]
    );
    assert_eq!(nmis, [(0xff, 0, 1)]);
    assert_eq!(machine.acpi().facs, facs);
}

#[test]
fn tables_parse_back_for_every_machine_size() {
    for vcpus in [1, 2, 8, 9, 255] {
        check(vcpus);
    }
}
