//! An I/O APIC in the style of Intel's 82093AA, as PC chipsets and QEMU
//! present it: one 4 KiB MMIO page (normally at 0xFEC0_0000), 24 input pins
//! and a redirection table that turns pin activity into interrupt messages
//! for the local APICs.
//!
//! The model is a pure state machine. It never touches a CPU: every call
//! that can raise an interrupt returns the messages to send as [`Msi`]
//! values, and the caller hands them to the local APICs (or encodes them
//! with [`Msi::address_data`]). Delivery is considered instantaneous, so the
//! delivery-status bit of an entry always reads 0.
//!
//! Register map (offsets in the MMIO page; all registers are 32 bits wide):
//!
//! | offset | register                                        |
//! |--------|-------------------------------------------------|
//! | 0x00   | IOREGSEL: index of the register IOWIN shows     |
//! | 0x10   | IOWIN: window onto the selected register        |
//! | 0x40   | EOI: a write of a vector clears remote IRR      |
//!
//! Indirect registers (through IOREGSEL/IOWIN):
//!
//! | index     | register                                               |
//! |-----------|--------------------------------------------------------|
//! | 0x00      | ID, bits 27:24                                         |
//! | 0x01      | version: 0x0017_0020 (version 0x20, 24 entries)        |
//! | 0x02      | arbitration ID, bits 27:24 (read-only, follows the ID)  |
//! | 0x10-0x3f | redirection entries 0-23, low dword at the even index  |
//!
//! Version 0x20 is the one QEMU's I/O APIC reports by default and the first
//! with the EOI register at 0x40; guests that see it may use that register
//! instead of relying on the local APIC's broadcast EOI. Both paths end in
//! [`IoApic::eoi`].
//!
//! Pins: [`IoApic::set_irq`] sets the electrical level of a pin. Whether a
//! level counts as "asserted" depends on the entry's polarity (bit 13: 0 =
//! active high, 1 = active low). Edge-triggered entries send one message on
//! each inactive-to-active transition while unmasked; edges that arrive
//! while the entry is masked are lost (82093AA: "not delivered or held
//! pending"). Level-triggered entries send a message whenever the pin is
//! asserted, the entry is unmasked and remote IRR is clear, and set remote
//! IRR; an EOI with the entry's vector clears remote IRR and, if the pin is
//! still asserted, sends the message again. Reprogramming an entry
//! re-evaluates it, so unmasking a level-triggered entry whose pin is
//! asserted delivers at once.
//!
//! ISA interrupt routing: PCs wire ISA IRQ n to pin n, except the timer,
//! IRQ0, which reaches pin 2 (the interrupt source override every PC
//! firmware reports, and what QEMU does). [`isa_irq_to_gsi`] is that map;
//! use it for the PIT's IRQ0 and for pc-testdev's interrupt lines.

/// Default physical address of the MMIO page.
pub const IOAPIC_BASE: u64 = loader::layout::IOAPIC_BASE;
/// Size of the MMIO page.
pub const IOAPIC_SIZE: u64 = loader::layout::IOAPIC_SIZE;
/// Number of input pins (redirection entries).
pub const NUM_PINS: usize = 24;
/// The version register: max redirection entry 23 in bits 23:16, version
/// 0x20 in bits 7:0.
pub const VERSION: u32 = ((NUM_PINS as u32 - 1) << 16) | 0x20;

/// MMIO offsets.
const IOREGSEL: u64 = 0x00;
const IOWIN: u64 = 0x10;
const EOI: u64 = 0x40;

/// Indirect register indices.
const REG_ID: u8 = 0x00;
const REG_VERSION: u8 = 0x01;
const REG_ARB: u8 = 0x02;
const REG_REDIR_FIRST: u8 = 0x10;
const REG_REDIR_LAST: u8 = 0x3f;

/// Redirection entry bits.
const VECTOR_MASK: u64 = 0xff;
const DELIVERY_MODE_SHIFT: u32 = 8;
const DEST_LOGICAL: u64 = 1 << 11;
const DELIVERY_STATUS: u64 = 1 << 12;
const POLARITY_LOW: u64 = 1 << 13;
const REMOTE_IRR: u64 = 1 << 14;
const TRIGGER_LEVEL: u64 = 1 << 15;
const MASKED: u64 = 1 << 16;
const DEST_SHIFT: u32 = 56;
/// Bits of the low dword software may write: vector, delivery mode,
/// destination mode, polarity, trigger mode and mask. Delivery status and
/// remote IRR are read-only; bits 17-31 are reserved.
const LOW_WRITABLE: u64 = 0xff | (7 << 8) | DEST_LOGICAL | POLARITY_LOW | TRIGGER_LEVEL | MASKED;
/// Bits of the high dword software may write: the destination, 63:56.
const HIGH_WRITABLE: u64 = 0xff << DEST_SHIFT;

/// Delivery modes (bits 10:8 of an entry).
#[allow(dead_code)] // the full delivery-mode encoding, named for readers
pub const DM_FIXED: u8 = 0;
#[allow(dead_code)] // the full delivery-mode encoding, named for readers
pub const DM_LOWEST: u8 = 1;
#[allow(dead_code)] // the full delivery-mode encoding, named for readers
pub const DM_SMI: u8 = 2;
#[allow(dead_code)] // the full delivery-mode encoding, named for readers
pub const DM_NMI: u8 = 4;
#[allow(dead_code)] // the full delivery-mode encoding, named for readers
pub const DM_INIT: u8 = 5;
#[allow(dead_code)] // the full delivery-mode encoding, named for readers
pub const DM_EXTINT: u8 = 7;

/// The I/O APIC pin an ISA IRQ reaches on a PC: IRQ0 (the PIT) goes to pin
/// 2, every other IRQ to the pin of the same number.
pub fn isa_irq_to_gsi(irq: u32) -> u32 {
    if irq == 0 {
        2
    } else {
        irq
    }
}

/// One interrupt message for the local APICs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Msi {
    /// Destination: an APIC ID (physical mode) or a logical destination
    /// bitmap (logical mode); 8 bits.
    pub dest: u32,
    pub vector: u8,
    /// 0 fixed, 1 lowest priority, 2 SMI, 4 NMI, 5 INIT, 7 ExtINT.
    pub delivery_mode: u8,
    /// Logical (true) or physical (false) destination mode.
    pub logical: bool,
    /// Level-triggered (true) or edge-triggered (false). A level-triggered
    /// fixed interrupt sets the vector's TMR bit in the local APIC, whose EOI
    /// must then be broadcast back to [`IoApic::eoi`].
    pub level: bool,
}

impl Msi {
    /// The message as an x86 MSI write: address 0xFEE0_0000 | dest << 12 |
    /// logical << 2; data = vector | delivery mode << 8 | assert << 14 |
    /// trigger mode << 15. The level ("assert") bit 14 is always set: every
    /// message this model sends is an assertion.
    pub fn address_data(&self) -> (u64, u32) {
        let address =
            0xfee0_0000u64 | (u64::from(self.dest & 0xff) << 12) | (u64::from(self.logical) << 2);
        let data = u32::from(self.vector)
            | (u32::from(self.delivery_mode & 7) << 8)
            | (1 << 14)
            | (u32::from(self.level) << 15);
        (address, data)
    }
}

/// The I/O APIC.
#[derive(Clone, Debug)]
pub struct IoApic {
    id: u8,
    arb: u8,
    ioregsel: u8,
    redir: [u64; NUM_PINS],
    /// Electrical level of each pin (bit n = pin n), before polarity.
    pins: u32,
}

impl IoApic {
    /// An I/O APIC in its reset state, with APIC ID `id` (4 bits; higher
    /// bits are dropped, as the ID register holds only bits 27:24). Every
    /// redirection entry is masked, edge-triggered, active high, vector 0.
    pub fn new(id: u8) -> Self {
        let id = id & 0x0f;
        IoApic {
            id,
            arb: id,
            ioregsel: 0,
            redir: [MASKED; NUM_PINS],
            pins: 0,
        }
    }

    /// An MMIO read at `offset` in the page (only the low 12 bits count) of
    /// `size` bytes. Narrow reads return the addressed bytes of the 32-bit
    /// register; unknown offsets read 0.
    pub fn read(&mut self, offset: u64, size: usize) -> u32 {
        let offset = offset & (IOAPIC_SIZE - 1);
        let reg = offset & !3;
        let value = match reg {
            IOREGSEL => u32::from(self.ioregsel),
            IOWIN => self.read_reg(self.ioregsel),
            _ => 0,
        };
        narrow(value, offset, size)
    }

    /// An MMIO write; returns the interrupt messages it caused (unmasking
    /// an asserted level-triggered entry, or an EOI that re-delivers).
    pub fn write(&mut self, offset: u64, size: usize, val: u32) -> Vec<Msi> {
        let offset = offset & (IOAPIC_SIZE - 1);
        let reg = offset & !3;
        match reg {
            IOREGSEL => {
                if offset & 3 == 0 && size > 0 {
                    self.ioregsel = val as u8;
                }
                Vec::new()
            }
            IOWIN => {
                let sel = self.ioregsel;
                let merged = merge(self.read_reg(sel), offset, size, val);
                self.write_reg(sel, merged)
            }
            EOI => {
                if offset & 3 == 0 && size > 0 {
                    self.eoi(val as u8)
                } else {
                    Vec::new()
                }
            }
            _ => Vec::new(),
        }
    }

    /// Set the electrical level of input pin `line` (a GSI, 0-23; others
    /// are ignored). Returns the messages this causes.
    pub fn set_irq(&mut self, line: u32, level: bool) -> Vec<Msi> {
        let mut out = Vec::new();
        let Some(pin) = pin_index(line) else {
            return out;
        };
        let bit = 1u32 << pin;
        let was_asserted = self.asserted(pin);
        if level {
            self.pins |= bit;
        } else {
            self.pins &= !bit;
        }
        let entry = self.redir[pin];
        if entry & MASKED != 0 {
            return out;
        }
        if entry & TRIGGER_LEVEL != 0 {
            self.service_level(pin, &mut out);
        } else if !was_asserted && self.asserted(pin) {
            self.send(pin, &mut out);
        }
        out
    }

    /// A pulse on pin `line`: raise it and lower it again, which delivers
    /// one edge-triggered interrupt. The natural way to feed ISA edge
    /// sources such as the PIT's IRQ0 (see [`isa_irq_to_gsi`]).
    pub fn pulse_irq(&mut self, line: u32) -> Vec<Msi> {
        let mut out = self.set_irq(line, true);
        out.extend(self.set_irq(line, false));
        out
    }

    /// End of interrupt for `vector` (a local APIC's broadcast EOI, or a
    /// write to the EOI register): clears remote IRR of every entry with
    /// that vector and re-delivers level-triggered entries whose pin is
    /// still asserted.
    pub fn eoi(&mut self, vector: u8) -> Vec<Msi> {
        let mut out = Vec::new();
        for pin in 0..NUM_PINS {
            let entry = self.redir[pin];
            if entry & VECTOR_MASK != u64::from(vector) || entry & REMOTE_IRR == 0 {
                continue;
            }
            self.redir[pin] &= !REMOTE_IRR;
            if entry & TRIGGER_LEVEL != 0 && entry & MASKED == 0 {
                self.service_level(pin, &mut out);
            }
        }
        out
    }

    /// The APIC ID (bits 27:24 of the ID register).
    #[cfg_attr(not(test), allow(dead_code))] // device API the tests use; the VMM does not need it yet
    pub fn id(&self) -> u8 {
        self.id
    }

    /// Redirection entry `line` as the guest would read it (64 bits), or
    /// None for a line the chip does not have.
    pub fn entry(&self, line: u32) -> Option<u64> {
        pin_index(line).map(|pin| self.redir[pin])
    }

    /// The electrical level last set on pin `line`.
    #[cfg_attr(not(test), allow(dead_code))] // device API the tests use; the VMM does not need it yet
    pub fn pin_level(&self, line: u32) -> bool {
        pin_index(line).is_some_and(|pin| self.pins & (1 << pin) != 0)
    }

    fn read_reg(&self, index: u8) -> u32 {
        match index {
            REG_ID => u32::from(self.id) << 24,
            REG_VERSION => VERSION,
            REG_ARB => u32::from(self.arb) << 24,
            REG_REDIR_FIRST..=REG_REDIR_LAST => {
                let n = usize::from((index - REG_REDIR_FIRST) / 2);
                let entry = self.redir[n];
                if index & 1 == 0 {
                    entry as u32
                } else {
                    (entry >> 32) as u32
                }
            }
            _ => 0,
        }
    }

    fn write_reg(&mut self, index: u8, val: u32) -> Vec<Msi> {
        let mut out = Vec::new();
        match index {
            REG_ID => {
                self.id = ((val >> 24) & 0x0f) as u8;
                // The arbitration ID is loaded from the ID on an ID write.
                self.arb = self.id;
            }
            REG_REDIR_FIRST..=REG_REDIR_LAST => {
                let pin = usize::from((index - REG_REDIR_FIRST) / 2);
                let old = self.redir[pin];
                let mut new = if index & 1 == 0 {
                    (old & !LOW_WRITABLE & 0xffff_ffff_0000_0000)
                        | (old & (DELIVERY_STATUS | REMOTE_IRR))
                        | (u64::from(val) & LOW_WRITABLE)
                } else {
                    (old & 0xffff_ffff) | ((u64::from(val) << 32) & HIGH_WRITABLE)
                };
                // Remote IRR only has meaning for level-triggered entries.
                if new & TRIGGER_LEVEL == 0 {
                    new &= !REMOTE_IRR;
                }
                self.redir[pin] = new;
                if new & TRIGGER_LEVEL != 0 && new & MASKED == 0 {
                    self.service_level(pin, &mut out);
                }
            }
            // Version and arbitration are read-only; other indices are
            // reserved.
            _ => {}
        }
        out
    }

    /// Whether pin `pin` is at its active level under its entry's polarity.
    fn asserted(&self, pin: usize) -> bool {
        let high = self.pins & (1 << pin) != 0;
        let active_low = self.redir[pin] & POLARITY_LOW != 0;
        high != active_low
    }

    /// A level-triggered, unmasked entry: deliver if asserted and remote
    /// IRR is clear.
    fn service_level(&mut self, pin: usize, out: &mut Vec<Msi>) {
        if self.asserted(pin) && self.redir[pin] & REMOTE_IRR == 0 {
            self.send(pin, out);
        }
    }

    fn send(&mut self, pin: usize, out: &mut Vec<Msi>) {
        let entry = self.redir[pin];
        let delivery_mode = ((entry >> DELIVERY_MODE_SHIFT) & 7) as u8;
        // Modes 3 and 6 are reserved: such an entry sends nothing.
        if delivery_mode == 3 || delivery_mode == 6 {
            return;
        }
        let level = entry & TRIGGER_LEVEL != 0;
        if level {
            self.redir[pin] |= REMOTE_IRR;
        }
        out.push(Msi {
            dest: (entry >> DEST_SHIFT) as u32 & 0xff,
            vector: (entry & VECTOR_MASK) as u8,
            delivery_mode,
            logical: entry & DEST_LOGICAL != 0,
            level,
        });
    }
}

fn pin_index(line: u32) -> Option<usize> {
    let pin = usize::try_from(line).ok()?;
    (pin < NUM_PINS).then_some(pin)
}

/// The `size` bytes at `offset` (within a 32-bit register) of `value`.
fn narrow(value: u32, offset: u64, size: usize) -> u32 {
    let shift = (offset & 3) * 8;
    let v = value >> shift;
    match size {
        1 => v & 0xff,
        2 => v & 0xffff,
        _ => v,
    }
}

/// `old` with the `size` bytes at `offset` replaced by the low bytes of
/// `val`; accesses of 4 bytes or more replace the whole register.
fn merge(old: u32, offset: u64, size: usize, val: u32) -> u32 {
    let shift = (offset & 3) * 8;
    let width_mask: u32 = match size {
        0 => return old,
        1 => 0xff,
        2 => 0xffff,
        _ => u32::MAX,
    };
    let mask = width_mask << shift;
    (old & !mask) | ((val << shift) & mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EDGE: u32 = 0;
    const LEVEL: u32 = 1 << 15;
    const LOW: u32 = 1 << 13;
    const MASK: u32 = 1 << 16;

    fn read_reg(io: &mut IoApic, index: u32) -> u32 {
        assert!(io.write(0x00, 4, index).is_empty());
        io.read(0x10, 4)
    }

    fn write_reg(io: &mut IoApic, index: u32, val: u32) -> Vec<Msi> {
        assert!(io.write(0x00, 4, index).is_empty());
        io.write(0x10, 4, val)
    }

    /// Program entry `pin`: destination first (as guests do), then the low
    /// dword.
    fn program(io: &mut IoApic, pin: u32, low: u32, dest: u8) -> Vec<Msi> {
        assert!(write_reg(io, 0x11 + 2 * pin, u32::from(dest) << 24).is_empty());
        write_reg(io, 0x10 + 2 * pin, low)
    }

    fn fixed(vector: u8, dest: u32, level: bool) -> Msi {
        Msi {
            dest,
            vector,
            delivery_mode: DM_FIXED,
            logical: false,
            level,
        }
    }

    #[test]
    fn reset_values() {
        let mut io = IoApic::new(3);
        assert_eq!(read_reg(&mut io, 0x00), 3 << 24);
        // Version 0x20, maximum redirection entry 23.
        assert_eq!(read_reg(&mut io, 0x01), 0x0017_0020);
        assert_eq!((read_reg(&mut io, 0x01) >> 16) & 0xff, 23);
        assert_eq!(read_reg(&mut io, 0x02), 3 << 24);
        for pin in 0..24 {
            assert_eq!(
                read_reg(&mut io, 0x10 + 2 * pin),
                1 << 16,
                "pin {pin} masked"
            );
            assert_eq!(read_reg(&mut io, 0x11 + 2 * pin), 0);
        }
        // Reserved indices read 0; IOREGSEL reads back.
        assert_eq!(read_reg(&mut io, 0x03), 0);
        assert_eq!(read_reg(&mut io, 0x40), 0);
        assert_eq!(read_reg(&mut io, 0xff), 0);
        assert_eq!(io.read(0x00, 4), 0xff);
        // Unknown offsets in the page read 0.
        assert_eq!(io.read(0x20, 4), 0);
        assert_eq!(io.read(0x40, 4), 0);
    }

    #[test]
    fn id_write_and_read_only_registers() {
        let mut io = IoApic::new(0);
        assert!(write_reg(&mut io, 0x00, 0xffff_ffff).is_empty());
        assert_eq!(read_reg(&mut io, 0x00), 0x0f << 24);
        assert_eq!(
            read_reg(&mut io, 0x02),
            0x0f << 24,
            "arbitration follows the ID"
        );
        assert_eq!(io.id(), 0x0f);
        write_reg(&mut io, 0x01, 0);
        write_reg(&mut io, 0x02, 0);
        assert_eq!(read_reg(&mut io, 0x01), VERSION);
        assert_eq!(read_reg(&mut io, 0x02), 0x0f << 24);
    }

    #[test]
    fn redirection_entry_fields_round_trip() {
        let mut io = IoApic::new(0);
        // Every writable low bit, plus read-only and reserved ones.
        write_reg(&mut io, 0x10 + 2 * 5, 0xffff_ffff);
        write_reg(&mut io, 0x11 + 2 * 5, 0xffff_ffff);
        let low = read_reg(&mut io, 0x10 + 2 * 5);
        assert_eq!(
            low, 0x1_afff,
            "delivery status, remote IRR and reserved bits stay 0"
        );
        assert_eq!(read_reg(&mut io, 0x11 + 2 * 5), 0xff00_0000);
        assert_eq!(io.entry(5), Some(0xff00_0000_0001_afff));
        assert_eq!(io.entry(24), None);
    }

    #[test]
    fn narrow_accesses() {
        let mut io = IoApic::new(0);
        // A byte write to IOREGSEL, then byte reads of IOWIN.
        io.write(0x00, 1, 0x01);
        assert_eq!(io.read(0x10, 1), 0x20);
        assert_eq!(io.read(0x12, 1), 0x17);
        assert_eq!(io.read(0x12, 2), 0x17);
        // A byte write into the destination byte of entry 0's high dword.
        io.write(0x00, 1, 0x11);
        io.write(0x13, 1, 0x42);
        assert_eq!(io.read(0x10, 4), 0x4200_0000);
        // Offsets beyond the page wrap into it; nothing panics.
        assert_eq!(io.read(0x1010, 4), 0x4200_0000);
        for offset in [0u64, 1, 3, 0xf, 0x11, 0x3f, 0x41, 0xfff, u64::MAX] {
            for size in [0usize, 1, 2, 4, 8, 16] {
                let _ = io.read(offset, size);
                let _ = io.write(offset, size, 0xdead_beef);
            }
        }
    }

    #[test]
    fn edge_triggered_delivery() {
        let mut io = IoApic::new(0);
        assert!(program(&mut io, 14, EDGE | 0x77, 1).is_empty());
        // Rising edge: one message.
        assert_eq!(io.set_irq(14, true), vec![fixed(0x77, 1, false)]);
        // Staying high: nothing more.
        assert!(io.set_irq(14, true).is_empty());
        assert!(io.set_irq(14, false).is_empty());
        assert_eq!(io.pulse_irq(14), vec![fixed(0x77, 1, false)]);
        // Edge entries never set remote IRR.
        assert_eq!(io.entry(14).unwrap() & REMOTE_IRR, 0);
    }

    #[test]
    fn masked_edge_is_lost() {
        let mut io = IoApic::new(0);
        assert!(program(&mut io, 14, EDGE | MASK | 0x77, 0).is_empty());
        assert!(io.pulse_irq(14).is_empty());
        assert!(io.set_irq(14, true).is_empty());
        // Unmasking while the pin is high does not invent an edge.
        assert!(program(&mut io, 14, EDGE | 0x77, 0).is_empty());
        assert!(io.set_irq(14, false).is_empty());
        assert_eq!(io.pulse_irq(14).len(), 1);
    }

    #[test]
    fn level_triggered_remote_irr_and_eoi() {
        let mut io = IoApic::new(0);
        assert!(program(&mut io, 15, LEVEL | 0x66, 2).is_empty());
        assert_eq!(io.set_irq(15, true), vec![fixed(0x66, 2, true)]);
        let irr = (read_reg(&mut io, 0x10 + 2 * 15) >> 14) & 1;
        assert_eq!(irr, 1, "remote IRR set on delivery");
        // Still asserted, remote IRR set: no more messages (coalesced).
        assert!(io.set_irq(15, true).is_empty());
        assert!(io.set_irq(15, false).is_empty());
        assert!(io.set_irq(15, true).is_empty());
        // EOI for another vector changes nothing.
        assert!(io.eoi(0x67).is_empty());
        // EOI while still asserted: re-delivered, remote IRR set again.
        assert_eq!(io.eoi(0x66), vec![fixed(0x66, 2, true)]);
        assert_ne!(io.entry(15).unwrap() & REMOTE_IRR, 0);
        // Deassert, then EOI: remote IRR clears, nothing sent.
        assert!(io.set_irq(15, false).is_empty());
        assert!(io.eoi(0x66).is_empty());
        assert_eq!(io.entry(15).unwrap() & REMOTE_IRR, 0);
        // Next assertion delivers again.
        assert_eq!(io.set_irq(15, true).len(), 1);
    }

    #[test]
    fn eoi_register_is_equivalent() {
        let mut io = IoApic::new(0);
        program(&mut io, 3, LEVEL | 0x50, 0);
        assert_eq!(io.set_irq(3, true).len(), 1);
        assert_eq!(io.write(0x40, 4, 0x50), vec![fixed(0x50, 0, true)]);
        io.set_irq(3, false);
        assert!(io.write(0x40, 4, 0x50).is_empty());
        assert_eq!(io.entry(3).unwrap() & REMOTE_IRR, 0);
    }

    #[test]
    fn rewriting_entry_keeps_remote_irr_until_eoi() {
        // kvm-unit-tests' "self reconfigure": the handler rewrites its own
        // entry before the EOI; remote IRR must survive the write and clear
        // on the EOI.
        let mut io = IoApic::new(0);
        program(&mut io, 14, LEVEL | 0x85, 0);
        assert_eq!(io.set_irq(14, true).len(), 1);
        io.set_irq(14, false);
        assert!(write_reg(&mut io, 0x10 + 2 * 14, LEVEL | 0x85 | REMOTE_IRR as u32).is_empty());
        assert!(program(&mut io, 14, LEVEL | 0x85, 1).is_empty());
        assert_ne!(io.entry(14).unwrap() & REMOTE_IRR, 0);
        assert!(io.eoi(0x85).is_empty());
        assert_eq!(io.entry(14).unwrap() & REMOTE_IRR, 0);
        // Software cannot set remote IRR either.
        write_reg(
            &mut io,
            0x10 + 2 * 14,
            LEVEL | MASK | 0x85 | REMOTE_IRR as u32,
        );
        assert_eq!(io.entry(14).unwrap() & REMOTE_IRR, 0);
    }

    #[test]
    fn switching_to_edge_clears_remote_irr() {
        let mut io = IoApic::new(0);
        program(&mut io, 1, LEVEL | 0x40, 0);
        assert_eq!(io.set_irq(1, true).len(), 1);
        program(&mut io, 1, EDGE | 0x40, 0);
        assert_eq!(io.entry(1).unwrap() & REMOTE_IRR, 0);
    }

    #[test]
    fn unmasking_asserted_level_entry_delivers() {
        let mut io = IoApic::new(0);
        program(&mut io, 14, LEVEL | MASK | 0x90, 0);
        assert!(io.set_irq(14, true).is_empty(), "masked: nothing");
        assert_eq!(io.entry(14).unwrap() & REMOTE_IRR, 0);
        assert_eq!(
            program(&mut io, 14, LEVEL | 0x90, 0),
            vec![fixed(0x90, 0, true)]
        );
        // Masked during service, EOI, then unmasked while still asserted.
        program(&mut io, 14, LEVEL | MASK | 0x90, 0);
        assert!(io.eoi(0x90).is_empty());
        assert_eq!(program(&mut io, 14, LEVEL | 0x90, 0).len(), 1);
    }

    #[test]
    fn active_low_polarity() {
        let mut io = IoApic::new(0);
        io.set_irq(9, true);
        // Active low, level: the pin is high, so not asserted.
        assert!(program(&mut io, 9, LEVEL | LOW | 0x39, 0).is_empty());
        // Pulling it low asserts it.
        assert_eq!(io.set_irq(9, false), vec![fixed(0x39, 0, true)]);
        assert!(io.set_irq(9, true).is_empty());
        assert!(io.eoi(0x39).is_empty(), "deasserted (high) at EOI");
        // Active low, edge: the falling edge delivers, the rising one not.
        program(&mut io, 10, EDGE | LOW | 0x3a, 0);
        assert!(io.set_irq(10, true).is_empty());
        assert_eq!(io.set_irq(10, false).len(), 1);
        assert!(io.set_irq(10, true).is_empty());
        // A low-active level entry on an idle (low) pin fires when unmasked.
        assert_eq!(program(&mut io, 11, LEVEL | LOW | 0x3b, 0).len(), 1);
    }

    #[test]
    fn message_fields_and_msi_encoding() {
        let mut io = IoApic::new(0);
        // Logical destination 0x0f, lowest priority, level.
        let low = LEVEL | (1 << 11) | (u32::from(DM_LOWEST) << 8) | 0x41;
        program(&mut io, 4, low, 0x0f);
        let msi = io.set_irq(4, true);
        let want = Msi {
            dest: 0x0f,
            vector: 0x41,
            delivery_mode: DM_LOWEST,
            logical: true,
            level: true,
        };
        assert_eq!(msi, vec![want]);
        assert_eq!(want.address_data(), (0xfee0_f004, 0xc141));
        // NMI, physical, edge.
        let nmi = Msi {
            dest: 0xff,
            vector: 0,
            delivery_mode: DM_NMI,
            logical: false,
            level: false,
        };
        assert_eq!(nmi.address_data(), (0xfeef_f000, 0x4400));
        program(&mut io, 5, (u32::from(DM_NMI) << 8) | 2, 0xff);
        assert_eq!(io.pulse_irq(5), vec![Msi { vector: 2, ..nmi }]);
        // Reserved delivery modes send nothing.
        program(&mut io, 6, (3 << 8) | 0x30, 0);
        assert!(io.pulse_irq(6).is_empty());
    }

    #[test]
    fn out_of_range_lines_are_ignored() {
        let mut io = IoApic::new(0);
        assert!(io.set_irq(24, true).is_empty());
        assert!(io.set_irq(u32::MAX, true).is_empty());
        assert!(!io.pin_level(24));
        assert!(io.eoi(0).is_empty());
    }

    #[test]
    fn isa_routing() {
        assert_eq!(isa_irq_to_gsi(0), 2);
        assert_eq!(isa_irq_to_gsi(1), 1);
        assert_eq!(isa_irq_to_gsi(14), 14);
    }
}
