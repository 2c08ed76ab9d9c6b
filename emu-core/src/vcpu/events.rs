//! Between instructions: interrupts, NMI, INIT/SIPI from the APIC bus,
//! the APIC timer, and what a halted or waiting vCPU does.

use super::{MpState, Outcome, Vcpu, HALT_WAIT};
use crate::api_types::Segment;
use crate::cpu::flags::IF;
use crate::cpu::{Cpu, SegReg};
use crate::exec::{Exec, Signals};
use crate::system::interrupt::{Delivery, Event};

impl Vcpu {
    /// The instruction-level view of this vCPU (outside the run loop).
    pub(super) fn exec(&mut self) -> Exec<'_> {
        let instret = self.cpu.instret;
        Exec {
            cpu: &mut self.cpu,
            mmu: &mut self.mmu,
            io: &mut self.io,
            sys: &mut self.sys,
            next_rip: 0,
            instret,
            implicit_supervisor: false,
            fast_forms: true,
            signals: Signals::default(),
            code: &self.code.pages,
        }
    }

    /// Re-read what the APIC wants: whether an interrupt may be pending
    /// and when the timer fires next.
    pub(super) fn refresh_interrupts(&mut self) {
        self.intr_pending = self.sys.apic.pending_vector().is_some();
        self.next_deadline = self.sys.apic.next_deadline().unwrap_or(u64::MAX);
    }

    /// Take everything that arrived: mailbox events, timer expiries, then
    /// INIT, SIPI, NMI and a maskable interrupt if one can be delivered.
    pub(super) fn service_events(&mut self) -> Option<Outcome> {
        if self.sys.mailbox.has_pending() {
            let idx = self.sys.bus_index;
            self.sys.bus.drain(idx, &mut self.sys.apic);
        }
        self.sys.sync_apic_clock(self.cpu.instret);
        if self.sys.apic.take_init() {
            self.init();
        }
        if let Some(v) = self.sys.apic.take_sipi() {
            if self.mp_state == MpState::WaitForSipi {
                self.sipi(v);
            }
        }
        if self.mp_state == MpState::WaitForSipi {
            self.refresh_interrupts();
            return None;
        }
        if self.sys.apic.take_nmi() {
            self.mp_state = MpState::Runnable;
            if self.inject(Event::External(2)) == Delivery::TripleFault {
                return Some(Outcome::Shutdown);
            }
        }
        self.refresh_interrupts();
        if self.intr_pending && !self.shadow && self.cpu.flags.test(IF) {
            if let Some(v) = self.sys.apic.ack() {
                self.mp_state = MpState::Runnable;
                if self.inject(Event::External(v)) == Delivery::TripleFault {
                    return Some(Outcome::Shutdown);
                }
            }
            self.refresh_interrupts();
        }
        None
    }

    fn inject(&mut self, ev: Event) -> Delivery {
        self.mmu.enter();
        let d = self.exec().deliver(ev);
        self.mmu.leave();
        if let (Some(sink), Event::External(v)) = (&self.sink, ev) {
            sink.event(&super::CpuEvent::Delivered {
                vector: v,
                rip: self.cpu.rip,
            });
        }
        d
    }

    /// INIT: the processor returns to its reset state (except the APIC's
    /// ID and base, the time-stamp counter, MTRRs, and the x87/SSE state
    /// and XCR0, which INIT leaves unchanged: SDM Vol. 3A, Table 10-1) and
    /// waits for SIPI.
    fn init(&mut self) {
        let mut fresh = Cpu::new();
        fresh.fpu = std::mem::take(&mut self.cpu.fpu);
        fresh.xcr0 = self.cpu.xcr0;
        fresh.apic_base = self.cpu.apic_base;
        fresh.instret = self.cpu.instret;
        fresh.tsc_offset = self.cpu.tsc_offset;
        fresh.msrs.mtrr_def_type = self.cpu.msrs.mtrr_def_type;
        fresh.msrs.mtrr_fixed = self.cpu.msrs.mtrr_fixed;
        fresh.msrs.mtrr_var = self.cpu.msrs.mtrr_var;
        fresh.msrs.pat = self.cpu.msrs.pat;
        self.cpu = fresh;
        self.sys.apic.init_reset();
        self.mmu.flush(softmmu::Flush::All);
        self.shadow = false;
        self.mp_state = MpState::WaitForSipi;
    }

    /// Start-up IPI: real mode at vector * 0x1000 (CS = vector << 8, IP 0).
    fn sipi(&mut self, v: u8) {
        let sel = u16::from(v) << 8;
        *self.cpu.sreg_mut(SegReg::Cs) = Segment::real_mode(sel, true);
        self.cpu.rip = 0;
        self.cpu.update_mode();
        self.mp_state = MpState::Runnable;
    }

    /// A halted or SIPI-waiting vCPU: skip ahead to the timer if it can
    /// fire, else sleep on the mailbox; report `Hlt` to the VMM when
    /// nothing arrived for a while.
    pub(super) fn idle(&mut self) -> Option<Outcome> {
        let halted = self.mp_state == MpState::Halted;
        if halted && self.cpu.flags.test(IF) {
            if let Some(t) = self.sys.apic.next_deadline() {
                // Deterministic virtual time: nothing else can happen on
                // this vCPU before the timer, so jump to it.
                let now = self.sys.clock.now_tsc(self.cpu.instret);
                if t > now {
                    self.sys.clock.skipped = self.sys.clock.skipped.wrapping_add(t - now);
                }
                return None;
            }
        }
        if self.sys.bus.len() <= 1 {
            // Alone: only the VMM could wake us.
            return Some(Outcome::Halt);
        }
        if self.sys.mailbox.wait(Some(HALT_WAIT)) {
            None
        } else {
            Some(Outcome::Halt)
        }
    }
}
