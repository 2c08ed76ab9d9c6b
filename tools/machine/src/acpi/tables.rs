//! ACPI tables as data structures, each serialised with its length and
//! checksum computed (ACPI 6.x, chapter 5: RSDP, RSDT, XSDT, FADT, FACS,
//! DSDT, MADT). Nothing here knows the machine: `acpi::build` fills the
//! structures in.

/// OEM ID of every table.
pub const OEM_ID: [u8; 6] = *b"SOFTVM";
/// OEM table ID of every table.
pub const OEM_TABLE_ID: [u8; 8] = *b"SOFTVMPC";
/// Creator ID and revision of every table.
pub const CREATOR_ID: [u8; 4] = *b"SOFT";
pub const CREATOR_REVISION: u32 = 1;

/// The byte that makes `bytes` sum to zero (mod 256) when added.
pub fn checksum(bytes: &[u8]) -> u8 {
    0u8.wrapping_sub(bytes.iter().fold(0u8, |s, &b| s.wrapping_add(b)))
}

/// A little-endian byte writer.
#[derive(Default)]
struct W(Vec<u8>);

impl W {
    fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    fn u16(&mut self, v: u16) -> &mut Self {
        self.0.extend(v.to_le_bytes());
        self
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend(v.to_le_bytes());
        self
    }
    fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend(v.to_le_bytes());
        self
    }
    fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.0.extend_from_slice(b);
        self
    }
    fn gas(&mut self, g: &Gas) -> &mut Self {
        self.u8(g.space)
            .u8(g.bit_width)
            .u8(g.bit_offset)
            .u8(g.access_size)
            .u64(g.address)
    }
}

/// A system description table: the 36-byte header (length and checksum
/// filled in) followed by `body`.
fn sdt(signature: &[u8; 4], revision: u8, body: &[u8]) -> Vec<u8> {
    let len = u32::try_from(36 + body.len()).unwrap_or(u32::MAX);
    let mut w = W::default();
    w.bytes(signature)
        .u32(len)
        .u8(revision)
        .u8(0)
        .bytes(&OEM_ID)
        .bytes(&OEM_TABLE_ID)
        .u32(1)
        .bytes(&CREATOR_ID)
        .u32(CREATOR_REVISION)
        .bytes(body);
    w.0[9] = checksum(&w.0);
    w.0
}

/// Root System Description Pointer, revision 2 (points at both the RSDT
/// and the XSDT).
pub struct Rsdp {
    pub rsdt: u32,
    pub xsdt: u64,
}

impl Rsdp {
    /// 36 bytes; `checksum` covers the first 20 (the ACPI 1.0 part),
    /// `extended checksum` all 36.
    pub fn bytes(&self) -> Vec<u8> {
        let mut w = W::default();
        w.bytes(b"RSD PTR ")
            .u8(0)
            .bytes(&OEM_ID)
            .u8(2)
            .u32(self.rsdt)
            .u32(36)
            .u64(self.xsdt)
            .u8(0)
            .bytes(&[0; 3]);
        w.0[8] = checksum(&w.0[..20]);
        w.0[32] = checksum(&w.0);
        w.0
    }
}

/// Root System Description Table: 32-bit table addresses.
pub struct Rsdt(pub Vec<u32>);

impl Rsdt {
    pub fn bytes(&self) -> Vec<u8> {
        let mut w = W::default();
        self.0.iter().for_each(|&a| {
            w.u32(a);
        });
        sdt(b"RSDT", 1, &w.0)
    }
}

/// Extended System Description Table: 64-bit table addresses.
pub struct Xsdt(pub Vec<u64>);

impl Xsdt {
    pub fn bytes(&self) -> Vec<u8> {
        let mut w = W::default();
        self.0.iter().for_each(|&a| {
            w.u64(a);
        });
        sdt(b"XSDT", 1, &w.0)
    }
}

/// Generic Address Structure.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Gas {
    /// 0 = system memory, 1 = system I/O.
    pub space: u8,
    pub bit_width: u8,
    pub bit_offset: u8,
    /// 0 = undefined (legacy), 1 = byte, 2 = word, 3 = dword, 4 = qword.
    pub access_size: u8,
    pub address: u64,
}

impl Gas {
    /// An I/O port register of `bits` bits.
    pub fn io(port: u16, bits: u8) -> Gas {
        Gas {
            space: 1,
            bit_width: bits,
            bit_offset: 0,
            access_size: 0,
            address: u64::from(port),
        }
    }
}

/// Fixed ACPI Description Table, revision 3 (244 bytes: the ACPI 2.0
/// layout with the 64-bit X_ fields).
pub struct Fadt {
    pub facs: u32,
    pub dsdt: u32,
    pub sci_int: u16,
    pub smi_cmd: u32,
    pub acpi_enable: u8,
    pub acpi_disable: u8,
    pub pm1a_evt: u16,
    pub pm1a_cnt: u16,
    pub pm_tmr: u16,
    pub gpe0: u16,
    pub pm1_evt_len: u8,
    pub pm1_cnt_len: u8,
    pub pm_tmr_len: u8,
    pub gpe0_len: u8,
    pub p_lvl2_lat: u16,
    pub p_lvl3_lat: u16,
    /// CMOS index of the century (0: none).
    pub century: u8,
    pub iapc_boot_arch: u16,
    pub flags: u32,
    pub reset_reg: Gas,
    pub reset_value: u8,
}

impl Fadt {
    pub fn bytes(&self) -> Vec<u8> {
        let io32 = |port: u16, len: u8| {
            if port == 0 {
                Gas::default()
            } else {
                Gas::io(port, len * 8)
            }
        };
        let mut w = W::default();
        w.u32(self.facs)
            .u32(self.dsdt)
            .u8(1) // ACPI 1.0 INT_MODEL: multiple APIC
            .u8(0) // preferred PM profile: unspecified
            .u16(self.sci_int)
            .u32(self.smi_cmd)
            .u8(self.acpi_enable)
            .u8(self.acpi_disable)
            .u8(0) // S4BIOS_REQ
            .u8(0) // PSTATE_CNT
            .u32(self.pm1a_evt.into())
            .u32(0)
            .u32(self.pm1a_cnt.into())
            .u32(0)
            .u32(0) // PM2_CNT_BLK
            .u32(self.pm_tmr.into())
            .u32(self.gpe0.into())
            .u32(0)
            .u8(self.pm1_evt_len)
            .u8(self.pm1_cnt_len)
            .u8(0)
            .u8(self.pm_tmr_len)
            .u8(self.gpe0_len)
            .u8(0)
            .u8(0) // GPE1_BASE
            .u8(0) // CST_CNT
            .u16(self.p_lvl2_lat)
            .u16(self.p_lvl3_lat)
            .u16(0) // FLUSH_SIZE
            .u16(0)
            .u8(0) // DUTY_OFFSET
            .u8(0)
            .u8(0) // DAY_ALRM
            .u8(0) // MON_ALRM
            .u8(self.century)
            .u16(self.iapc_boot_arch)
            .u8(0)
            .u32(self.flags)
            .gas(&self.reset_reg)
            .u8(self.reset_value)
            .bytes(&[0; 3])
            // X_FIRMWARE_CTRL must be 0 when FIRMWARE_CTRL is set.
            .u64(0)
            .u64(self.dsdt.into())
            .gas(&io32(self.pm1a_evt, self.pm1_evt_len))
            .gas(&Gas::default())
            .gas(&io32(self.pm1a_cnt, self.pm1_cnt_len))
            .gas(&Gas::default())
            .gas(&Gas::default())
            .gas(&io32(self.pm_tmr, self.pm_tmr_len))
            .gas(&io32(self.gpe0, self.gpe0_len))
            .gas(&Gas::default());
        sdt(b"FACP", 3, &w.0)
    }
}

/// Firmware ACPI Control Structure, version 2 (64 bytes, no checksum).
pub struct Facs {
    pub hardware_signature: u32,
}

impl Facs {
    pub const LEN: usize = 64;
    /// Offset of the 32-bit firmware waking vector (real mode).
    pub const WAKING_VECTOR: usize = 12;
    /// Offset of the 64-bit X_Firmware_Waking_Vector (protected mode).
    pub const X_WAKING_VECTOR: usize = 24;

    pub fn bytes(&self) -> Vec<u8> {
        let mut w = W::default();
        w.bytes(b"FACS")
            .u32(Self::LEN as u32)
            .u32(self.hardware_signature)
            .u32(0) // firmware waking vector: the OS sets it
            .u32(0) // global lock
            .u32(0) // flags: no S4BIOS, no 64-bit wake
            .u64(0) // X_Firmware_Waking_Vector
            .u8(2) // version
            .bytes(&[0; 3])
            .u32(0) // OSPM flags
            .bytes(&[0; 24]);
        w.0
    }
}

/// Differentiated System Description Table: a header and AML.
pub struct Dsdt(pub Vec<u8>);

impl Dsdt {
    pub fn bytes(&self) -> Vec<u8> {
        sdt(b"DSDT", 1, &self.0)
    }
}

/// One interrupt controller structure of the MADT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MadtEntry {
    /// Type 0: a processor's local APIC (flags bit 0: enabled).
    LocalApic { uid: u8, apic_id: u8, flags: u32 },
    /// Type 1: an I/O APIC and the first GSI it serves.
    IoApic { id: u8, address: u32, gsi_base: u32 },
    /// Type 2: ISA IRQ `source` arrives on `gsi` with `flags` (MPS INTI
    /// flags: polarity bits 1:0, trigger mode bits 3:2).
    Override { source: u8, gsi: u32, flags: u16 },
    /// Type 4: which LINT pin of processor `uid` (0xff: all) is NMI.
    LocalApicNmi { uid: u8, flags: u16, lint: u8 },
}

impl MadtEntry {
    fn write(&self, w: &mut W) {
        match *self {
            MadtEntry::LocalApic {
                uid,
                apic_id,
                flags,
            } => w.u8(0).u8(8).u8(uid).u8(apic_id).u32(flags),
            MadtEntry::IoApic {
                id,
                address,
                gsi_base,
            } => w.u8(1).u8(12).u8(id).u8(0).u32(address).u32(gsi_base),
            MadtEntry::Override { source, gsi, flags } => {
                w.u8(2).u8(10).u8(0).u8(source).u32(gsi).u16(flags)
            }
            MadtEntry::LocalApicNmi { uid, flags, lint } => {
                w.u8(4).u8(6).u8(uid).u16(flags).u8(lint)
            }
        };
    }
}

/// Multiple APIC Description Table.
pub struct Madt {
    pub local_apic_address: u32,
    /// Bit 0: PCAT_COMPAT (8259 PICs present).
    pub flags: u32,
    pub entries: Vec<MadtEntry>,
}

impl Madt {
    pub fn bytes(&self) -> Vec<u8> {
        let mut w = W::default();
        w.u32(self.local_apic_address).u32(self.flags);
        for e in &self.entries {
            e.write(&mut w);
        }
        sdt(b"APIC", 1, &w.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(b: &[u8]) -> u8 {
        b.iter().fold(0u8, |s, &x| s.wrapping_add(x))
    }

    #[test]
    fn sizes_and_checksums() {
        let r = Rsdp { rsdt: 1, xsdt: 2 }.bytes();
        assert_eq!(r.len(), 36);
        assert_eq!((sum(&r[..20]), sum(&r)), (0, 0));
        let f = Fadt {
            facs: 0,
            dsdt: 0,
            sci_int: 9,
            smi_cmd: 0,
            acpi_enable: 0,
            acpi_disable: 0,
            pm1a_evt: 0x600,
            pm1a_cnt: 0x604,
            pm_tmr: 0x608,
            gpe0: 0,
            pm1_evt_len: 4,
            pm1_cnt_len: 2,
            pm_tmr_len: 4,
            gpe0_len: 0,
            p_lvl2_lat: 0,
            p_lvl3_lat: 0,
            century: 0,
            iapc_boot_arch: 0,
            flags: 0,
            reset_reg: Gas::default(),
            reset_value: 0,
        }
        .bytes();
        assert_eq!(f.len(), 244);
        assert_eq!(sum(&f), 0);
        assert_eq!(
            Facs {
                hardware_signature: 0
            }
            .bytes()
            .len(),
            Facs::LEN
        );
        assert_eq!(Rsdt(vec![1, 2]).bytes().len(), 44);
        assert_eq!(Xsdt(vec![1, 2]).bytes().len(), 52);
        let m = Madt {
            local_apic_address: 0xfee0_0000,
            flags: 1,
            entries: vec![
                MadtEntry::LocalApic {
                    uid: 0,
                    apic_id: 0,
                    flags: 1,
                },
                MadtEntry::Override {
                    source: 0,
                    gsi: 2,
                    flags: 0,
                },
            ],
        }
        .bytes();
        assert_eq!(m.len(), 44 + 8 + 10);
        assert_eq!(sum(&m), 0);
        assert_eq!(checksum(&[1, 2, 3]), 250);
    }
}
