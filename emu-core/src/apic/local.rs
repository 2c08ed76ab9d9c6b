//! One vCPU's local APIC: registers, priorities, acceptance, the timer.

use std::sync::{Arc, Mutex};

use super::timer::{Timer, TimerMode};
use super::{
    esr, reg, Addressing, ApicEvent, ApicFault, ApicFeatures, ApicMode, DeliveryMode, DestMode,
    Ipi, Shorthand, TriggerMode, APIC_BASE_BSP, APIC_BASE_EN, APIC_BASE_EXTD, APIC_VERSION,
    DEFAULT_APIC_BASE, LVT_MASKED, X2APIC_MSR_FIRST,
};

/// Indices into the LVT array.
const LVT_CMCI: usize = 0;
const LVT_TIMER: usize = 1;
const LVT_THERMAL: usize = 2;
const LVT_PERF: usize = 3;
const LVT_LINT0: usize = 4;
const LVT_LINT1: usize = 5;
const LVT_ERROR: usize = 6;
const LVT_COUNT: usize = 7;

/// LVT bits 10:8 (delivery mode), 12 (delivery status, read-only), 13 (pin
/// polarity), 14 (remote IRR, read-only), 15 (trigger mode).
const LVT_DELIVERY_MODE: u32 = 7 << 8;
const LVT_DELIVERY_STATUS: u32 = 1 << 12;
const LVT_POLARITY: u32 = 1 << 13;
const LVT_REMOTE_IRR: u32 = 1 << 14;
const LVT_LEVEL: u32 = 1 << 15;
const LVT_TIMER_PERIODIC: u32 = 1 << 17;
const LVT_TIMER_TSC_DEADLINE: u32 = 1 << 18;

/// SVR: bits 7:0 vector, 8 APIC software enable, 9 focus processor checking
/// disabled. EOI-broadcast suppression (bit 12) is not implemented, so it
/// is reserved (version register bit 24 = 0).
const SVR_ENABLE: u32 = 1 << 8;
const SVR_WRITABLE: u32 = 0x3ff;

/// ICR low: vector, delivery mode, destination mode, level, trigger mode,
/// shorthand. Bit 12 (delivery status) reads 0: delivery is instantaneous.
const ICR_WRITABLE: u32 = 0x000c_cfff;
const ICR_DEST_LOGICAL: u32 = 1 << 11;
const ICR_LEVEL_ASSERT: u32 = 1 << 14;
const ICR_TRIGGER_LEVEL: u32 = 1 << 15;

/// The local APIC of one vCPU. See the [module documentation](super).
#[derive(Debug)]
pub struct LocalApic {
    features: ApicFeatures,
    /// The initial (hardware) APIC ID: the x2APIC ID, and the xAPIC ID after
    /// reset (low 8 bits).
    initial_id: u32,
    /// IA32_APIC_BASE.
    base: u64,
    /// ID register as read in the current mode (xAPIC: ID in bits 31:24).
    id_reg: u32,
    tpr: u32,
    ldr: u32,
    dfr: u32,
    svr: u32,
    isr: [u32; 8],
    tmr: [u32; 8],
    irr: [u32; 8],
    /// ESR as last loaded by a write.
    esr: u32,
    /// Errors detected since the last ESR write.
    esr_latch: u32,
    lvt: [u32; LVT_COUNT],
    icr_low: u32,
    icr_high: u32,
    timer: Timer,
    /// The APIC's clock: the latest time given to `advance` (TSC ticks).
    now: u64,
    nmi_pending: bool,
    smi_pending: bool,
    init_pending: bool,
    sipi_pending: Option<u8>,
    /// Addressing state shared with the bus.
    shared: Arc<Mutex<Addressing>>,
    /// This APIC's vCPU index on a bus, once registered.
    vcpu_index: Option<usize>,
}

fn bit_test(bits: &[u32; 8], v: u8) -> bool {
    bits[(v >> 5) as usize] & (1 << (v & 31)) != 0
}

fn bit_set(bits: &mut [u32; 8], v: u8) {
    bits[(v >> 5) as usize] |= 1 << (v & 31);
}

fn bit_clear(bits: &mut [u32; 8], v: u8) {
    bits[(v >> 5) as usize] &= !(1 << (v & 31));
}

/// The highest vector set in a 256-bit register.
fn highest(bits: &[u32; 8]) -> Option<u8> {
    (0..8)
        .rev()
        .find(|&i| bits[i] != 0)
        .map(|i| (i as u32 * 32 + 31 - bits[i].leading_zeros()) as u8)
}

/// The x2APIC logical ID derived from the x2APIC ID (SDM 11.12.10.2):
/// cluster ID = ID[19:4] in bits 31:16, 1 << ID[3:0] in bits 15:0.
pub(crate) fn x2apic_ldr(id: u32) -> u32 {
    ((id >> 4) << 16) | (1 << (id & 0xf))
}

impl LocalApic {
    /// A local APIC with the default [`ApicFeatures`], in the power-up
    /// state: xAPIC mode at 0xfee00000, BSP iff `apic_id` is 0.
    pub fn new(apic_id: u32) -> LocalApic {
        LocalApic::with_features(apic_id, ApicFeatures::default())
    }

    /// A local APIC with the given features, in the power-up state.
    pub fn with_features(apic_id: u32, features: ApicFeatures) -> LocalApic {
        let bsp = if apic_id == 0 { APIC_BASE_BSP } else { 0 };
        let mut apic = LocalApic {
            features,
            initial_id: apic_id,
            base: DEFAULT_APIC_BASE | APIC_BASE_EN | bsp,
            id_reg: 0,
            tpr: 0,
            ldr: 0,
            dfr: 0,
            svr: 0,
            isr: [0; 8],
            tmr: [0; 8],
            irr: [0; 8],
            esr: 0,
            esr_latch: 0,
            lvt: [0; LVT_COUNT],
            icr_low: 0,
            icr_high: 0,
            timer: Timer::default(),
            now: 0,
            nmi_pending: false,
            smi_pending: false,
            init_pending: false,
            sipi_pending: None,
            shared: Arc::new(Mutex::new(Addressing::default())),
            vcpu_index: None,
        };
        apic.reset();
        apic
    }

    // ----- state, reset, IA32_APIC_BASE -------------------------------------

    /// The features this APIC was built with.
    pub fn features(&self) -> ApicFeatures {
        self.features
    }

    /// The initial (hardware-assigned) APIC ID.
    pub fn initial_id(&self) -> u32 {
        self.initial_id
    }

    /// The physical APIC ID used for destination matching: ID register
    /// bits 31:24 in xAPIC mode, the 32-bit x2APIC ID in x2APIC mode.
    pub fn apic_id(&self) -> u32 {
        match self.mode() {
            ApicMode::X2Apic => self.id_reg,
            _ => self.id_reg >> 24,
        }
    }

    /// The vCPU index given by [`super::ApicBus::register`], if registered.
    pub fn vcpu_index(&self) -> Option<usize> {
        self.vcpu_index
    }

    pub(crate) fn attach(&mut self, index: usize) -> Arc<Mutex<Addressing>> {
        self.vcpu_index = Some(index);
        self.publish();
        Arc::clone(&self.shared)
    }

    /// Power-up/RESET state (SDM 11.4.7.1): IA32_APIC_BASE back to
    /// 0xfee00000 with EN (the BSP flag is kept), xAPIC mode, every register
    /// at its reset value, the timer disarmed, no pending NMI/INIT/SIPI/SMI.
    /// The virtual clock is kept.
    pub fn reset(&mut self) {
        self.base = DEFAULT_APIC_BASE | APIC_BASE_EN | (self.base & APIC_BASE_BSP);
        self.reset_registers();
        self.id_reg = (self.initial_id & 0xff) << 24;
        self.nmi_pending = false;
        self.smi_pending = false;
        self.init_pending = false;
        self.sipi_pending = None;
        self.publish();
    }

    /// The effect of an INIT signal on the APIC (SDM 11.4.7.3): like reset
    /// except that IA32_APIC_BASE, the mode and the APIC ID are kept (and in
    /// x2APIC mode the derived LDR). Pending NMI/INIT/SIPI latches are kept:
    /// the vCPU consumes them with the `take_*` methods.
    pub fn init_reset(&mut self) {
        let id = self.id_reg;
        self.reset_registers();
        self.id_reg = id;
        if self.mode() == ApicMode::X2Apic {
            self.ldr = x2apic_ldr(id);
        }
        self.publish();
    }

    fn reset_registers(&mut self) {
        self.tpr = 0;
        self.ldr = 0;
        self.dfr = 0xffff_ffff;
        self.svr = 0xff;
        self.isr = [0; 8];
        self.tmr = [0; 8];
        self.irr = [0; 8];
        self.esr = 0;
        self.esr_latch = 0;
        self.lvt = [LVT_MASKED; LVT_COUNT];
        self.icr_low = 0;
        self.icr_high = 0;
        let expirations = self.timer.expirations;
        self.timer = Timer {
            expirations,
            ..Timer::default()
        };
    }

    /// IA32_APIC_BASE.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// The physical address of the xAPIC register page.
    pub fn base_address(&self) -> u64 {
        self.base & !0xfff & ((1u64 << self.features.phys_addr_bits.clamp(12, 63)) - 1)
    }

    /// The mode selected by IA32_APIC_BASE.
    pub fn mode(&self) -> ApicMode {
        match (
            self.base & APIC_BASE_EN != 0,
            self.base & APIC_BASE_EXTD != 0,
        ) {
            (false, _) => ApicMode::Disabled,
            (true, false) => ApicMode::XApic,
            (true, true) => ApicMode::X2Apic,
        }
    }

    /// Whether the APIC is software-enabled (SVR bit 8) and globally enabled.
    pub fn is_enabled(&self) -> bool {
        self.mode() != ApicMode::Disabled && self.svr & SVR_ENABLE != 0
    }

    /// WRMSR IA32_APIC_BASE by the guest. Errors (#GP) for reserved bits
    /// (0..=7, 9, MAXPHYADDR and up, EXTD without x2APIC support) and for the
    /// invalid transitions of SDM 11.12.5 (EN=0 with EXTD=1, disabled ->
    /// x2APIC, x2APIC -> xAPIC). Entering x2APIC mode loads the 32-bit
    /// x2APIC ID and derives the LDR; disabling returns the registers to
    /// their reset state.
    pub fn set_base(&mut self, value: u64) -> Result<(), ApicFault> {
        let new = self.check_base(value)?;
        match (self.mode(), new) {
            (ApicMode::Disabled, ApicMode::X2Apic) | (ApicMode::X2Apic, ApicMode::XApic) => {
                return Err(ApicFault)
            }
            _ => {}
        }
        self.apply_base(value, new);
        Ok(())
    }

    /// IA32_APIC_BASE set by the VMM (state restore): reserved bits and
    /// EN=0/EXTD=1 are still refused, but any transition is allowed.
    pub fn set_base_host(&mut self, value: u64) -> Result<(), ApicFault> {
        let new = self.check_base(value)?;
        self.apply_base(value, new);
        Ok(())
    }

    fn check_base(&self, value: u64) -> Result<ApicMode, ApicFault> {
        let bits = self.features.phys_addr_bits.clamp(12, 63);
        let mut reserved = 0x2ffu64 | (!0u64 << bits);
        if !self.features.x2apic {
            reserved |= APIC_BASE_EXTD;
        }
        if value & reserved != 0 {
            return Err(ApicFault);
        }
        match (value & APIC_BASE_EN != 0, value & APIC_BASE_EXTD != 0) {
            (false, false) => Ok(ApicMode::Disabled),
            (false, true) => Err(ApicFault),
            (true, false) => Ok(ApicMode::XApic),
            (true, true) => Ok(ApicMode::X2Apic),
        }
    }

    fn apply_base(&mut self, value: u64, new: ApicMode) {
        let old = self.mode();
        self.base = value;
        if old != new {
            match new {
                ApicMode::Disabled => {
                    self.reset_registers();
                    self.id_reg = (self.initial_id & 0xff) << 24;
                }
                ApicMode::XApic => {
                    // From disabled the registers are in the reset state;
                    // from x2APIC (host only) fall back to it as well.
                    if old == ApicMode::X2Apic {
                        self.reset_registers();
                    }
                    self.id_reg = (self.initial_id & 0xff) << 24;
                }
                ApicMode::X2Apic => {
                    self.id_reg = self.initial_id;
                    self.ldr = x2apic_ldr(self.initial_id);
                    self.dfr = 0xffff_ffff;
                    self.icr_high = 0;
                }
            }
        }
        self.publish();
    }

    fn publish(&self) {
        let a = Addressing {
            mode: self.mode(),
            sw_enabled: self.svr & SVR_ENABLE != 0,
            id: self.apic_id(),
            ldr: self.ldr,
            dfr: self.dfr,
        };
        let mut g = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        *g = a;
    }

    // ----- priorities and interrupt flow ------------------------------------

    /// The task priority register (CR8 = TPR >> 4).
    pub fn tpr(&self) -> u8 {
        self.tpr as u8
    }

    /// Set the TPR (MOV to CR8 sets `cr8 << 4`).
    pub fn set_tpr(&mut self, tpr: u8) {
        self.tpr = tpr as u32;
    }

    /// The processor priority register (SDM 11.8.3.1).
    pub fn ppr(&self) -> u8 {
        let isrv = highest(&self.isr).unwrap_or(0);
        let tpr = self.tpr as u8;
        if tpr >> 4 >= isrv >> 4 {
            tpr
        } else {
            isrv & 0xf0
        }
    }

    /// Whether `vector` is requested (IRR).
    pub fn irr_bit(&self, vector: u8) -> bool {
        bit_test(&self.irr, vector)
    }

    /// Whether `vector` is in service.
    pub fn isr_bit(&self, vector: u8) -> bool {
        bit_test(&self.isr, vector)
    }

    /// Whether `vector` was accepted as level-triggered.
    pub fn tmr_bit(&self, vector: u8) -> bool {
        bit_test(&self.tmr, vector)
    }

    /// Accept a fixed interrupt (from the bus, an LVT entry, a device):
    /// sets IRR, and TMR when level-triggered. Vectors 0..=15 are illegal:
    /// they set ESR "receive illegal vector" and are dropped. A globally or
    /// software-disabled APIC drops fixed interrupts. Returns whether IRR
    /// was set (an already pending vector coalesces).
    pub fn accept(&mut self, vector: u8, level_triggered: bool) -> bool {
        if self.mode() == ApicMode::Disabled {
            return false;
        }
        if vector < 16 {
            self.signal_error(esr::RECEIVE_ILLEGAL_VECTOR);
            return false;
        }
        if self.svr & SVR_ENABLE == 0 {
            return false;
        }
        bit_set(&mut self.irr, vector);
        if level_triggered {
            bit_set(&mut self.tmr, vector);
        } else {
            bit_clear(&mut self.tmr, vector);
        }
        true
    }

    /// The highest IRR vector whose priority class is above the PPR's, if
    /// the APIC is enabled: the interrupt the CPU would take next.
    pub fn pending_vector(&self) -> Option<u8> {
        if !self.is_enabled() {
            return None;
        }
        let v = highest(&self.irr)?;
        (v >> 4 > self.ppr() >> 4).then_some(v)
    }

    /// The CPU takes the pending interrupt: its vector moves from IRR to ISR.
    pub fn ack(&mut self) -> Option<u8> {
        let v = self.pending_vector()?;
        bit_clear(&mut self.irr, v);
        bit_set(&mut self.isr, v);
        Some(v)
    }

    /// End of interrupt: clears the highest ISR bit (and its TMR bit).
    /// Returns the vector, if one was in service.
    pub fn eoi(&mut self) -> Option<u8> {
        let v = highest(&self.isr)?;
        bit_clear(&mut self.isr, v);
        bit_clear(&mut self.tmr, v);
        Some(v)
    }

    fn signal_error(&mut self, bits: u32) {
        self.esr_latch |= bits;
        let lvt = self.lvt[LVT_ERROR];
        if lvt & LVT_MASKED != 0 || self.svr & SVR_ENABLE == 0 {
            return;
        }
        let v = lvt as u8;
        if v < 16 {
            self.esr_latch |= esr::RECEIVE_ILLEGAL_VECTOR;
        } else {
            bit_set(&mut self.irr, v);
            bit_clear(&mut self.tmr, v);
        }
    }

    /// Apply an event from the bus.
    pub fn deliver(&mut self, event: ApicEvent) {
        match event {
            ApicEvent::Fixed {
                vector,
                level_triggered,
            } => {
                self.accept(vector, level_triggered);
            }
            ApicEvent::Smi => self.smi_pending = true,
            ApicEvent::Nmi => self.nmi_pending = true,
            ApicEvent::Init => {
                // A SIPI latched before this INIT is stale.
                self.init_pending = true;
                self.sipi_pending = None;
            }
            ApicEvent::Sipi(v) => self.sipi_pending = Some(v),
        }
    }

    /// Consume a pending NMI.
    pub fn take_nmi(&mut self) -> bool {
        std::mem::take(&mut self.nmi_pending)
    }

    /// Consume a pending SMI.
    pub fn take_smi(&mut self) -> bool {
        std::mem::take(&mut self.smi_pending)
    }

    /// Consume a pending INIT (the vCPU then INITs itself, calls
    /// [`LocalApic::init_reset`] and waits for a SIPI).
    pub fn take_init(&mut self) -> bool {
        std::mem::take(&mut self.init_pending)
    }

    /// Consume a pending start-up IPI; the vCPU honours it only while it
    /// waits for SIPI (the AP starts in real mode at `vector << 12`).
    pub fn take_sipi(&mut self) -> Option<u8> {
        self.sipi_pending.take()
    }

    /// Whether an NMI, INIT, SIPI or SMI is latched (without consuming).
    pub fn has_pending_event(&self) -> bool {
        self.nmi_pending || self.smi_pending || self.init_pending || self.sipi_pending.is_some()
    }

    /// A signal on LINT0 (`pin` 0) or LINT1 (`pin` 1), delivered as its LVT
    /// entry says: fixed, NMI, SMI or INIT. Returns false when the entry is
    /// masked, the pin does not exist, or the mode is ExtINT (the caller's
    /// PIC must then supply the vector).
    pub fn raise_lint(&mut self, pin: u8) -> bool {
        let idx = match pin {
            0 => LVT_LINT0,
            1 => LVT_LINT1,
            _ => return false,
        };
        let lvt = self.lvt[idx];
        if lvt & LVT_MASKED != 0 || self.mode() == ApicMode::Disabled {
            return false;
        }
        match (lvt >> 8) & 7 {
            0 => self.accept(lvt as u8, lvt & LVT_LEVEL != 0),
            2 => {
                self.smi_pending = true;
                true
            }
            4 => {
                self.nmi_pending = true;
                true
            }
            5 => {
                self.init_pending = true;
                self.sipi_pending = None;
                true
            }
            _ => false,
        }
    }

    // ----- timer ------------------------------------------------------------

    fn timer_mode(&self) -> TimerMode {
        TimerMode::from_lvt(self.lvt[LVT_TIMER])
    }

    /// The APIC's current time (the latest `advance`).
    pub fn now(&self) -> u64 {
        self.now
    }

    /// Bring the timer to TSC time `now` (earlier times are ignored) and
    /// inject its interrupt if it expired and is unmasked. Returns the
    /// number of expiries in this step (several for a periodic timer that
    /// was not advanced for several periods; they coalesce in IRR).
    pub fn advance(&mut self, now: u64) -> u64 {
        if now > self.now {
            self.now = now;
        }
        if self.mode() == ApicMode::Disabled {
            return 0;
        }
        let mode = self.timer_mode();
        let n = self
            .timer
            .advance(mode, self.now, self.features.tsc_per_bus_tick);
        if n > 0 {
            let lvt = self.lvt[LVT_TIMER];
            if lvt & LVT_MASKED == 0 {
                self.accept(lvt as u8, false);
            }
        }
        n
    }

    /// The TSC time at which the timer will next inject an interrupt, or
    /// `None` if it is disarmed or masked (a masked timer keeps counting but
    /// has nothing to deliver). A halted vCPU may jump its clock there.
    pub fn next_deadline(&self) -> Option<u64> {
        if self.mode() == ApicMode::Disabled || self.lvt[LVT_TIMER] & LVT_MASKED != 0 {
            return None;
        }
        self.timer.next_deadline(self.timer_mode())
    }

    /// Total timer expiries so far (masked ones included).
    pub fn timer_expirations(&self) -> u64 {
        self.timer.expirations
    }

    /// WRMSR IA32_TSC_DEADLINE: arms the TSC-deadline timer (0 disarms).
    /// Ignored unless the LVT timer is in TSC-deadline mode. A deadline at
    /// or before the current time fires at the next `advance`.
    pub fn set_tsc_deadline(&mut self, value: u64) {
        if self.mode() != ApicMode::Disabled && self.timer_mode() == TimerMode::TscDeadline {
            self.timer.tsc_deadline = value;
        }
    }

    /// RDMSR IA32_TSC_DEADLINE: 0 unless in TSC-deadline mode.
    pub fn tsc_deadline(&self) -> u64 {
        if self.timer_mode() == TimerMode::TscDeadline {
            self.timer.tsc_deadline
        } else {
            0
        }
    }

    fn timer_current_count(&self) -> u32 {
        match self.timer_mode() {
            TimerMode::TscDeadline => 0,
            _ => self.timer.current(self.now, self.features.tsc_per_bus_tick),
        }
    }

    // ----- register access --------------------------------------------------

    fn version(&self) -> u32 {
        let max_lvt = if self.features.cmci { 6 } else { 5 };
        APIC_VERSION | (max_lvt << 16)
    }

    fn lvt_index(offset: u32) -> Option<usize> {
        Some(match offset {
            reg::LVT_CMCI => LVT_CMCI,
            reg::LVT_TIMER => LVT_TIMER,
            reg::LVT_THERMAL => LVT_THERMAL,
            reg::LVT_PERF => LVT_PERF,
            reg::LVT_LINT0 => LVT_LINT0,
            reg::LVT_LINT1 => LVT_LINT1,
            reg::LVT_ERROR => LVT_ERROR,
            _ => return None,
        })
    }

    /// The software-writable bits of an LVT entry.
    fn lvt_writable(&self, idx: usize) -> u32 {
        let vm = 0xff | LVT_MASKED;
        match idx {
            LVT_TIMER => {
                if self.features.tsc_deadline {
                    vm | LVT_TIMER_PERIODIC | LVT_TIMER_TSC_DEADLINE
                } else {
                    vm | LVT_TIMER_PERIODIC
                }
            }
            LVT_LINT0 | LVT_LINT1 => vm | LVT_DELIVERY_MODE | LVT_POLARITY | LVT_LEVEL,
            LVT_ERROR => vm,
            _ => vm | LVT_DELIVERY_MODE,
        }
    }

    /// Bits that are defined but read-only (tolerated in x2APIC writes).
    fn lvt_read_only(idx: usize) -> u32 {
        match idx {
            LVT_LINT0 | LVT_LINT1 => LVT_DELIVERY_STATUS | LVT_REMOTE_IRR,
            _ => LVT_DELIVERY_STATUS,
        }
    }

    /// Whether a register offset exists in the current configuration.
    fn has_cmci(&self) -> bool {
        self.features.cmci
    }

    /// Read a register by xAPIC offset (16-byte aligned) for either mode.
    /// `None` for offsets with no readable register.
    fn read_reg(&self, offset: u32) -> Option<u32> {
        let x2 = self.mode() == ApicMode::X2Apic;
        Some(match offset {
            reg::ID => self.id_reg,
            reg::VERSION => self.version(),
            reg::TPR => self.tpr,
            reg::APR if !x2 => 0,
            reg::PPR => self.ppr() as u32,
            reg::RRD if !x2 => 0,
            reg::LDR => self.ldr,
            reg::DFR if !x2 => self.dfr,
            reg::SVR => self.svr,
            0x100..=0x170 => self.isr[((offset - reg::ISR0) >> 4) as usize],
            0x180..=0x1f0 => self.tmr[((offset - reg::TMR0) >> 4) as usize],
            0x200..=0x270 => self.irr[((offset - reg::IRR0) >> 4) as usize],
            reg::ESR => self.esr,
            reg::LVT_CMCI if self.has_cmci() => self.lvt[LVT_CMCI],
            reg::ICR_LOW => self.icr_low,
            reg::ICR_HIGH if !x2 => self.icr_high,
            reg::LVT_TIMER..=reg::LVT_ERROR => {
                self.lvt[Self::lvt_index(offset).unwrap_or(LVT_TIMER)]
            }
            reg::TIMER_INITIAL_COUNT => self.timer.initial,
            reg::TIMER_CURRENT_COUNT => self.timer_current_count(),
            reg::TIMER_DIVIDE => self.timer.tdcr,
            _ => return None,
        })
    }

    /// Read the xAPIC register page at `offset` (0..0x1000). Registers are
    /// 32 bits on 16-byte boundaries; a read at byte 1..=3 of a register
    /// returns the value shifted right accordingly (for narrow reads), and
    /// anything else that is not a readable register reads 0. Reads 0 unless
    /// the APIC is in xAPIC mode (the page is not decoded otherwise).
    pub fn read(&self, offset: u32) -> u32 {
        if self.mode() != ApicMode::XApic || offset >= 0x1000 {
            return 0;
        }
        let sub = offset & 0xf;
        if sub >= 4 {
            return 0;
        }
        self.read_reg(offset & !0xf).unwrap_or(0) >> (8 * sub)
    }

    /// Write the xAPIC register page at `offset`. Only aligned writes of a
    /// register take effect; read-only and reserved registers ignore writes.
    /// A write of the ICR low word sends the IPI, which is returned for the
    /// caller to pass to [`super::ApicBus::send`]. Ignored unless in xAPIC mode.
    pub fn write(&mut self, offset: u32, val: u32) -> Option<Ipi> {
        if self.mode() != ApicMode::XApic || offset >= 0x1000 || offset & 0xf != 0 {
            return None;
        }
        match offset {
            reg::ID => {
                self.id_reg = val & 0xff00_0000;
                self.publish();
            }
            reg::TPR => self.tpr = val & 0xff,
            reg::EOI => {
                self.eoi();
            }
            reg::LDR => {
                self.ldr = val & 0xff00_0000;
                self.publish();
            }
            reg::DFR => {
                self.dfr = val | 0x0fff_ffff;
                self.publish();
            }
            reg::SVR => self.write_svr(val),
            reg::ESR => self.write_esr(),
            reg::LVT_CMCI if self.has_cmci() => self.write_lvt(LVT_CMCI, val),
            reg::ICR_LOW => {
                self.icr_low = val & ICR_WRITABLE;
                return self.send_icr();
            }
            reg::ICR_HIGH => self.icr_high = val & 0xff00_0000,
            reg::LVT_TIMER..=reg::LVT_ERROR => {
                if let Some(idx) = Self::lvt_index(offset) {
                    self.write_lvt(idx, val);
                }
            }
            reg::TIMER_INITIAL_COUNT => self.write_initial_count(val),
            reg::TIMER_DIVIDE => self.write_divide(val),
            _ => {}
        }
        None
    }

    /// RDMSR of an x2APIC MSR (0x800..=0x8ff). `None` means #GP(0): not in
    /// x2APIC mode, a write-only register (EOI, SELF IPI) or no register.
    pub fn read_msr(&self, msr: u32) -> Option<u64> {
        if self.mode() != ApicMode::X2Apic || !(X2APIC_MSR_FIRST..=0x8ff).contains(&msr) {
            return None;
        }
        let offset = (msr - X2APIC_MSR_FIRST) << 4;
        if offset == reg::ICR_LOW {
            return Some(((self.icr_high as u64) << 32) | self.icr_low as u64);
        }
        self.read_reg(offset).map(u64::from)
    }

    /// WRMSR of an x2APIC MSR (0x800..=0x8ff). `Err` means #GP(0): not in
    /// x2APIC mode, a read-only or nonexistent register, or a reserved bit
    /// set (SDM 11.12.1.3). A write of the ICR (0x830) or SELF IPI (0x83f)
    /// returns the IPI to send.
    pub fn write_msr(&mut self, msr: u32, val: u64) -> Result<Option<Ipi>, ApicFault> {
        if self.mode() != ApicMode::X2Apic || !(X2APIC_MSR_FIRST..=0x8ff).contains(&msr) {
            return Err(ApicFault);
        }
        let offset = (msr - X2APIC_MSR_FIRST) << 4;
        let check = |allowed: u32| {
            if val & !(allowed as u64) != 0 {
                Err(ApicFault)
            } else {
                Ok(val as u32)
            }
        };
        match offset {
            reg::TPR => self.tpr = check(0xff)?,
            reg::EOI => {
                check(0)?;
                self.eoi();
            }
            reg::SVR => {
                let v = check(SVR_WRITABLE)?;
                self.write_svr(v);
            }
            reg::ESR => {
                check(0)?;
                self.write_esr();
            }
            reg::LVT_CMCI if self.has_cmci() => {
                let v = check(self.lvt_writable(LVT_CMCI) | Self::lvt_read_only(LVT_CMCI))?;
                self.write_lvt(LVT_CMCI, v);
            }
            reg::ICR_LOW => {
                // Bits 12, 13, 16, 17 and 31:20 of the low half are reserved.
                if val as u32 & !ICR_WRITABLE != 0 {
                    return Err(ApicFault);
                }
                self.icr_low = val as u32;
                self.icr_high = (val >> 32) as u32;
                return Ok(self.send_icr());
            }
            reg::LVT_TIMER..=reg::LVT_ERROR => {
                let idx = Self::lvt_index(offset).ok_or(ApicFault)?;
                let v = check(self.lvt_writable(idx) | Self::lvt_read_only(idx))?;
                self.write_lvt(idx, v);
            }
            reg::TIMER_INITIAL_COUNT => {
                let v = check(u32::MAX)?;
                self.write_initial_count(v);
            }
            reg::TIMER_DIVIDE => {
                let v = check(0xb)?;
                self.write_divide(v);
            }
            reg::SELF_IPI => {
                let v = check(0xff)? as u8;
                return Ok(self.self_ipi(v));
            }
            _ => return Err(ApicFault),
        }
        Ok(None)
    }

    fn write_svr(&mut self, val: u32) {
        self.svr = val & SVR_WRITABLE;
        if self.svr & SVR_ENABLE == 0 {
            // SDM 11.4.7.2: software disable masks every LVT entry.
            for l in &mut self.lvt {
                *l |= LVT_MASKED;
            }
        }
        self.publish();
    }

    fn write_esr(&mut self) {
        // Write-before-read: the write loads the errors seen since the last
        // write and clears the internal latch.
        self.esr = std::mem::take(&mut self.esr_latch);
    }

    fn write_lvt(&mut self, idx: usize, val: u32) {
        let writable = self.lvt_writable(idx);
        let mut v = val & writable;
        if self.svr & SVR_ENABLE == 0 {
            v |= LVT_MASKED;
        }
        let old = self.lvt[idx];
        self.lvt[idx] = (old & !writable) | v;
        if idx == LVT_TIMER && TimerMode::from_lvt(old) != TimerMode::from_lvt(v) {
            self.timer.disarm();
        }
    }

    fn write_initial_count(&mut self, val: u32) {
        if self.timer_mode() == TimerMode::TscDeadline {
            return;
        }
        self.timer
            .write_initial(val, self.now, self.features.tsc_per_bus_tick);
    }

    fn write_divide(&mut self, val: u32) {
        self.timer
            .write_divide(val, self.now, self.features.tsc_per_bus_tick);
    }

    fn self_ipi(&mut self, vector: u8) -> Option<Ipi> {
        if vector < 16 {
            self.signal_error(esr::RECEIVE_ILLEGAL_VECTOR);
            return None;
        }
        Some(Ipi {
            vector,
            delivery_mode: DeliveryMode::Fixed,
            dest_mode: DestMode::Physical,
            shorthand: Shorthand::SelfOnly,
            dest: self.apic_id(),
            level: true,
            trigger: TriggerMode::Edge,
            source_apic_id: self.apic_id(),
            source_vcpu: self.vcpu_index,
            x2apic: self.mode() == ApicMode::X2Apic,
        })
    }

    /// Build the IPI that the current ICR describes.
    fn send_icr(&mut self) -> Option<Ipi> {
        let low = self.icr_low;
        let x2apic = self.mode() == ApicMode::X2Apic;
        let delivery_mode = DeliveryMode::from_bits(low >> 8)?;
        let vector = low as u8;
        if matches!(
            delivery_mode,
            DeliveryMode::Fixed | DeliveryMode::LowestPriority
        ) && vector < 16
        {
            self.signal_error(esr::SEND_ILLEGAL_VECTOR);
            return None;
        }
        let shorthand = match (low >> 18) & 3 {
            0 => Shorthand::None,
            1 => Shorthand::SelfOnly,
            2 => Shorthand::AllIncludingSelf,
            _ => Shorthand::AllExcludingSelf,
        };
        Some(Ipi {
            vector,
            delivery_mode,
            dest_mode: if low & ICR_DEST_LOGICAL != 0 {
                DestMode::Logical
            } else {
                DestMode::Physical
            },
            shorthand,
            dest: if x2apic {
                self.icr_high
            } else {
                self.icr_high >> 24
            },
            level: low & ICR_LEVEL_ASSERT != 0,
            trigger: if low & ICR_TRIGGER_LEVEL != 0 {
                TriggerMode::Level
            } else {
                TriggerMode::Edge
            },
            source_apic_id: self.apic_id(),
            source_vcpu: self.vcpu_index,
            x2apic,
        })
    }
}
