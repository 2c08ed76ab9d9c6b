//! The local APIC of a vCPU and the fabric that carries interrupts between
//! vCPUs, modelled on the Intel SDM Vol. 3A chapter 11 and shaped like KVM's
//! in-kernel APIC.
//!
//! * [`LocalApic`] is one vCPU's APIC: the xAPIC register page
//!   ([`LocalApic::read`]/[`LocalApic::write`] at offsets of the 4 KiB page at
//!   `IA32_APIC_BASE`), the x2APIC MSRs 0x800..=0x8ff
//!   ([`LocalApic::read_msr`]/[`LocalApic::write_msr`]), `IA32_APIC_BASE`
//!   itself ([`LocalApic::set_base`]), interrupt acceptance and priority
//!   (IRR/ISR/TMR, TPR/PPR, EOI), the pending NMI/INIT/SIPI/SMI latches and
//!   the timer. It is owned by its vCPU thread (`&mut` access only).
//! * [`ApicBus`] is shared (`Arc`) by all vCPUs of a VM. It resolves the
//!   destinations of an [`Ipi`] (or an MSI from a device) and posts
//!   [`ApicEvent`]s into the targets' [`Mailbox`]es, waking a target that
//!   sleeps in [`ApicBus::wait`]. Each vCPU applies its mailbox to its own
//!   `LocalApic` with [`ApicBus::drain`] at an instruction boundary.
//!
//! # How the run loop uses this module
//!
//! ```text
//! // Keep the APIC's clock current before touching it:
//! apic.advance(tsc_now);
//! // xAPIC MMIO (gpa in the page at apic.base_address(), apic.mode() == XApic):
//! let v = apic.read(offset);  /  if let Some(ipi) = apic.write(offset, v) { bus.send(&ipi); }
//! // x2APIC MSRs (RDMSR/WRMSR 0x800..=0x8ff): None / Err(ApicFault) mean #GP(0).
//! // IA32_APIC_BASE: apic.set_base(v)?  IA32_TSC_DEADLINE: apic.set_tsc_deadline(v).
//! // CR8 is apic.tpr() >> 4 / apic.set_tpr((cr8 as u8) << 4).
//! // At each instruction boundary (cheap check first):
//! if bus.has_pending(idx) { bus.drain(idx, &mut apic); }
//! if apic.take_init() { /* INIT the CPU, apic.init_reset(), wait for SIPI */ }
//! if let Some(v) = apic.take_sipi() { /* if waiting for SIPI: CS = v << 8, IP = 0 */ }
//! if apic.take_nmi() { /* deliver NMI 2 */ }
//! if rflags.IF && !shadow && apic.pending_vector().is_some() { let v = apic.ack().unwrap(); /* deliver v */ }
//! // HLT with nothing deliverable (check the mailbox first): in deterministic
//! // mode jump the clock to the timer, otherwise sleep until an event comes
//! // (with a timeout converted from next_deadline when there is one):
//! match apic.next_deadline() { Some(t) => { tsc = max(tsc, t); apic.advance(tsc); } None => { bus.wait(idx, None); } }
//! // Cache `bus.mailbox(idx)` (an Arc) to make the pending check one atomic load.
//! ```
//!
//! # Decisions
//!
//! * **Bus clock.** The APIC timer counts bus clocks; one bus clock is
//!   [`ApicFeatures::tsc_per_bus_tick`] TSC ticks, 1 by default (bus clock =
//!   TSC, 1:1). The divide configuration then divides this clock by 1..128.
//! * **Time.** The APIC never reads host time. Its notion of "now" is the last
//!   value given to [`LocalApic::advance`] (time never goes backwards there);
//!   register accesses that start the timer or read the current count use
//!   that value, so the vCPU should call `advance` before them.
//! * **Periodic timer and lost periods.** The periodic timer keeps its phase:
//!   the next expiry is always `start + k * period`, never `now + period`, so
//!   no time drifts away however far one `advance` jumps. Every expiry is
//!   counted ([`LocalApic::timer_expirations`]; `advance` returns how many
//!   happened in that call). As on hardware, an expiry whose vector is still
//!   pending in IRR is coalesced with it (the SDM's IRR holds one request per
//!   vector), so if the vCPU lets several periods go by without taking the
//!   interrupt it sees one interrupt for them; a vCPU that advances at least
//!   once per period (or skips to [`LocalApic::next_deadline`] while halted)
//!   loses none.
//! * **Lowest-priority delivery** picks, deterministically, the matching
//!   target with the lowest vCPU index (registration order) whose APIC is
//!   software-enabled, or the lowest-numbered match if none is. (The SDM's
//!   arbitration by processor priority and focus processor is allowed to be
//!   model specific; determinism is more useful here.)
//! * **Software-disabled APIC** (SVR bit 8 = 0): fixed interrupts are not
//!   accepted (as KVM), [`LocalApic::pending_vector`] reports nothing, the LVT
//!   mask bits are forced on; NMI, INIT, SIPI and SMI are still taken.
//! * **LVT CMCI** exists only when [`ApicFeatures::cmci`] is set; the default
//!   (off, like KVM without MCG_CMCI_P) gives the version register 0x0005_0014
//!   (version 0x14, 6 LVT entries); with CMCI it is 0x0006_0014.
//! * **Timer mode changes**: a write to the LVT timer that changes the timer
//!   mode disarms the timer (SDM 11.5.4.1): the initial count and
//!   IA32_TSC_DEADLINE are cleared.
//! * **Illegal vectors** (0..=15): an ICR send of a fixed or lowest-priority
//!   IPI sets ESR "send illegal vector" and sends nothing; acceptance (from the
//!   bus, an LVT entry or the x2APIC SELF IPI register) sets "receive illegal
//!   vector" and does not set IRR. Either raises the LVT error interrupt when
//!   that entry is unmasked.

mod bus;
mod local;
mod timer;

#[cfg(test)]
mod tests;

pub use bus::{ApicBus, Mailbox};
pub use local::LocalApic;

/// Default physical base of the APIC page (IA32_APIC_BASE bits 12 and up).
pub const DEFAULT_APIC_BASE: u64 = 0xfee0_0000;
/// IA32_APIC_BASE: this processor is the bootstrap processor.
pub const APIC_BASE_BSP: u64 = 1 << 8;
/// IA32_APIC_BASE: x2APIC mode enable (EXTD).
pub const APIC_BASE_EXTD: u64 = 1 << 10;
/// IA32_APIC_BASE: APIC global enable (EN).
pub const APIC_BASE_EN: u64 = 1 << 11;
/// MSR number of IA32_APIC_BASE.
pub const MSR_IA32_APIC_BASE: u32 = 0x1b;
/// MSR number of IA32_TSC_DEADLINE.
pub const MSR_IA32_TSC_DEADLINE: u32 = 0x6e0;
/// First MSR of the x2APIC range.
pub const X2APIC_MSR_FIRST: u32 = 0x800;
/// Last MSR of the x2APIC range that this model decodes (0x800..=0x8ff).
pub const X2APIC_MSR_LAST: u32 = 0x8ff;
/// The APIC version (bits 7:0 of the version register): an integrated APIC.
pub const APIC_VERSION: u32 = 0x14;

/// xAPIC register offsets within the APIC page (x2APIC MSR = 0x800 + offset / 16).
pub mod reg {
    pub const ID: u32 = 0x020;
    pub const VERSION: u32 = 0x030;
    pub const TPR: u32 = 0x080;
    pub const APR: u32 = 0x090;
    pub const PPR: u32 = 0x0a0;
    pub const EOI: u32 = 0x0b0;
    pub const RRD: u32 = 0x0c0;
    pub const LDR: u32 = 0x0d0;
    pub const DFR: u32 = 0x0e0;
    pub const SVR: u32 = 0x0f0;
    pub const ISR0: u32 = 0x100;
    pub const TMR0: u32 = 0x180;
    pub const IRR0: u32 = 0x200;
    pub const ESR: u32 = 0x280;
    pub const LVT_CMCI: u32 = 0x2f0;
    pub const ICR_LOW: u32 = 0x300;
    pub const ICR_HIGH: u32 = 0x310;
    pub const LVT_TIMER: u32 = 0x320;
    pub const LVT_THERMAL: u32 = 0x330;
    pub const LVT_PERF: u32 = 0x340;
    pub const LVT_LINT0: u32 = 0x350;
    pub const LVT_LINT1: u32 = 0x360;
    pub const LVT_ERROR: u32 = 0x370;
    pub const TIMER_INITIAL_COUNT: u32 = 0x380;
    pub const TIMER_CURRENT_COUNT: u32 = 0x390;
    pub const TIMER_DIVIDE: u32 = 0x3e0;
    /// x2APIC only (MSR 0x83f); no xAPIC register at this offset.
    pub const SELF_IPI: u32 = 0x3f0;
}

/// Error Status Register bits (SDM Figure 11-9).
pub mod esr {
    pub const SEND_CHECKSUM: u32 = 1 << 0;
    pub const RECEIVE_CHECKSUM: u32 = 1 << 1;
    pub const SEND_ACCEPT: u32 = 1 << 2;
    pub const RECEIVE_ACCEPT: u32 = 1 << 3;
    pub const REDIRECTABLE_IPI: u32 = 1 << 4;
    pub const SEND_ILLEGAL_VECTOR: u32 = 1 << 5;
    pub const RECEIVE_ILLEGAL_VECTOR: u32 = 1 << 6;
    pub const ILLEGAL_REGISTER_ADDRESS: u32 = 1 << 7;
}

/// The LVT mask bit (bit 16 of every LVT entry).
pub const LVT_MASKED: u32 = 1 << 16;

/// A RDMSR/WRMSR or IA32_APIC_BASE write that must raise #GP(0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApicFault;

impl std::fmt::Display for ApicFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("APIC access raises #GP(0)")
    }
}

impl std::error::Error for ApicFault {}

/// The state selected by IA32_APIC_BASE EN (bit 11) and EXTD (bit 10).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ApicMode {
    /// Globally disabled (EN = 0): no registers, no interrupts.
    #[default]
    Disabled,
    /// xAPIC: registers in the MMIO page.
    XApic,
    /// x2APIC: registers in MSRs 0x800.., 32-bit IDs.
    X2Apic,
}

/// What this APIC model implements (mirror these in CPUID).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApicFeatures {
    /// x2APIC mode may be entered (CPUID.1:ECX bit 21).
    pub x2apic: bool,
    /// TSC-deadline timer mode (CPUID.1:ECX bit 24).
    pub tsc_deadline: bool,
    /// The LVT CMCI register exists (MCG_CAP bit 10).
    pub cmci: bool,
    /// MAXPHYADDR: IA32_APIC_BASE bits at and above it are reserved.
    pub phys_addr_bits: u8,
    /// TSC ticks per APIC bus clock (the timer's input before the divider).
    pub tsc_per_bus_tick: u64,
}

impl Default for ApicFeatures {
    fn default() -> Self {
        ApicFeatures {
            x2apic: true,
            tsc_deadline: true,
            cmci: false,
            phys_addr_bits: 40,
            tsc_per_bus_tick: 1,
        }
    }
}

/// ICR/MSI delivery modes (ICR bits 10:8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryMode {
    Fixed,
    LowestPriority,
    Smi,
    Nmi,
    Init,
    StartUp,
}

impl DeliveryMode {
    /// Decode ICR bits 10:8; the reserved encodings 011 and 111 give `None`.
    pub fn from_bits(bits: u32) -> Option<DeliveryMode> {
        Some(match bits & 7 {
            0 => DeliveryMode::Fixed,
            1 => DeliveryMode::LowestPriority,
            2 => DeliveryMode::Smi,
            4 => DeliveryMode::Nmi,
            5 => DeliveryMode::Init,
            6 => DeliveryMode::StartUp,
            _ => return None,
        })
    }

    /// The ICR bits 10:8 encoding.
    pub fn bits(self) -> u32 {
        match self {
            DeliveryMode::Fixed => 0,
            DeliveryMode::LowestPriority => 1,
            DeliveryMode::Smi => 2,
            DeliveryMode::Nmi => 4,
            DeliveryMode::Init => 5,
            DeliveryMode::StartUp => 6,
        }
    }
}

/// ICR bit 11.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DestMode {
    Physical,
    Logical,
}

/// ICR bits 19:18.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shorthand {
    None,
    SelfOnly,
    AllIncludingSelf,
    AllExcludingSelf,
}

/// ICR bit 15.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TriggerMode {
    Edge,
    Level,
}

/// One interrupt message, as produced by an ICR (or SELF IPI) write or built
/// from an MSI; [`ApicBus::send`] delivers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipi {
    pub vector: u8,
    pub delivery_mode: DeliveryMode,
    pub dest_mode: DestMode,
    pub shorthand: Shorthand,
    /// xAPIC format: the 8-bit ICR destination (ICR bits 63:56); x2APIC
    /// format: the 32-bit destination (ICR bits 63:32).
    pub dest: u32,
    /// ICR bit 14 (level: assert = true).
    pub level: bool,
    pub trigger: TriggerMode,
    /// The physical APIC ID of the sender (`u32::MAX` for a device).
    pub source_apic_id: u32,
    /// The sender's vCPU index on the bus, if its APIC was registered; used
    /// for the self and all-excluding-self shorthands.
    pub source_vcpu: Option<usize>,
    /// `dest` is in x2APIC format (the sender was in x2APIC mode), so the
    /// broadcast destination is 0xffff_ffff instead of 0xff.
    pub x2apic: bool,
}

impl Ipi {
    /// An INIT "level de-assert" message (INIT, level 0, level-triggered):
    /// an arbitration-ID synchronisation that does not INIT anyone.
    pub fn is_init_deassert(&self) -> bool {
        self.delivery_mode == DeliveryMode::Init
            && !self.level
            && self.trigger == TriggerMode::Level
    }

    /// The broadcast destination for this message's format.
    pub fn broadcast_dest(&self) -> u32 {
        if self.x2apic {
            u32::MAX
        } else {
            0xff
        }
    }
}

/// What the bus posts into a vCPU's mailbox; [`LocalApic::deliver`] applies it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApicEvent {
    /// A fixed (or lowest-priority) interrupt: sets IRR (and TMR if level).
    Fixed {
        vector: u8,
        level_triggered: bool,
    },
    Smi,
    Nmi,
    Init,
    /// Start-up IPI with its vector (the AP starts at `vector << 12`).
    Sipi(u8),
}

/// What the bus needs to know about a registered APIC to match destinations.
/// The `LocalApic` publishes it whenever one of these registers changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) struct Addressing {
    pub mode: ApicMode,
    pub sw_enabled: bool,
    /// Physical APIC ID (8 bits in xAPIC mode, 32 in x2APIC mode).
    pub id: u32,
    /// The LDR register as read.
    pub ldr: u32,
    /// The DFR register as read (xAPIC).
    pub dfr: u32,
}

impl Addressing {
    /// Whether this APIC is addressed by `ipi`'s destination field (no
    /// shorthand), per SDM 11.6.2.
    pub fn matches(&self, ipi: &Ipi) -> bool {
        if self.mode == ApicMode::Disabled {
            return false;
        }
        if ipi.dest == ipi.broadcast_dest() {
            return true;
        }
        match ipi.dest_mode {
            DestMode::Physical => self.id == ipi.dest,
            DestMode::Logical => match self.mode {
                ApicMode::X2Apic => {
                    // Cluster ID in bits 31:16, a bit mask of members in 15:0.
                    let cluster = ipi.dest >> 16;
                    let members = ipi.dest & 0xffff;
                    self.ldr >> 16 == cluster && self.ldr & members & 0xffff != 0
                }
                ApicMode::XApic => {
                    let mda = ipi.dest & 0xff;
                    let logical_id = self.ldr >> 24;
                    match self.dfr >> 28 {
                        0xf => logical_id & mda != 0,
                        0x0 => logical_id >> 4 == mda >> 4 && logical_id & mda & 0xf != 0,
                        _ => false,
                    }
                }
                ApicMode::Disabled => false,
            },
        }
    }
}
