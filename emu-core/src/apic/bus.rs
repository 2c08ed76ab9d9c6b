//! The interrupt fabric between the local APICs of a VM.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use super::{
    Addressing, ApicEvent, ApicMode, DeliveryMode, DestMode, Ipi, LocalApic, Shorthand, TriggerMode,
};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug, Default)]
struct MailboxState {
    events: VecDeque<ApicEvent>,
    kicked: bool,
}

/// One vCPU's inbox on the bus: a queue of events under a mutex, an atomic
/// "something is pending" flag for the run loop's cheap check, and a
/// condition variable a halted vCPU sleeps on.
#[derive(Debug)]
pub struct Mailbox {
    addressing: Arc<Mutex<Addressing>>,
    state: Mutex<MailboxState>,
    pending: AtomicBool,
    wakeup: Condvar,
}

impl Default for Mailbox {
    /// A mailbox on no bus (nothing is ever posted to it).
    fn default() -> Mailbox {
        Mailbox::new(Arc::new(Mutex::new(Addressing::default())))
    }
}

impl Mailbox {
    fn new(addressing: Arc<Mutex<Addressing>>) -> Mailbox {
        Mailbox {
            addressing,
            state: Mutex::new(MailboxState::default()),
            pending: AtomicBool::new(false),
            wakeup: Condvar::new(),
        }
    }

    fn addressing(&self) -> Addressing {
        *lock(&self.addressing)
    }

    /// Queue an event and wake the owner.
    pub fn post(&self, event: ApicEvent) {
        let mut st = lock(&self.state);
        st.events.push_back(event);
        self.pending.store(true, Ordering::Release);
        drop(st);
        self.wakeup.notify_all();
    }

    /// Wake the owner from [`Mailbox::wait`] (or make its next wait return
    /// at once) without an event; also raises the pending flag so a running
    /// vCPU notices at its next check.
    pub fn kick(&self) {
        let mut st = lock(&self.state);
        st.kicked = true;
        self.pending.store(true, Ordering::Release);
        drop(st);
        self.wakeup.notify_all();
    }

    /// Cheap check: an event or a kick arrived since the last drain.
    #[inline]
    pub fn has_pending(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }

    /// Sleep until an event is queued or a kick arrives (true), or until
    /// `timeout` passes (false). Returns at once if one is already there.
    /// A kick is consumed by the wait it ends.
    pub fn wait(&self, timeout: Option<Duration>) -> bool {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut st = lock(&self.state);
        loop {
            if !st.events.is_empty() || st.kicked {
                st.kicked = false;
                return true;
            }
            match (timeout, deadline) {
                (Some(_), Some(d)) => {
                    let now = Instant::now();
                    if now >= d {
                        return false;
                    }
                    st = self
                        .wakeup
                        .wait_timeout(st, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
                // No timeout, or one too far to represent: wait for ever.
                _ => st = self.wakeup.wait(st).unwrap_or_else(|e| e.into_inner()),
            }
        }
    }

    /// Apply every queued event to `apic` (the owner's APIC) in arrival
    /// order; clears the pending flag and any kick. Returns the number of
    /// events applied.
    pub fn drain(&self, apic: &mut LocalApic) -> usize {
        let events = {
            let mut st = lock(&self.state);
            st.kicked = false;
            self.pending.store(false, Ordering::Release);
            std::mem::take(&mut st.events)
        };
        let n = events.len();
        for ev in events {
            apic.deliver(ev);
        }
        n
    }
}

/// The APIC bus of a VM, shared (`Arc`) by its vCPUs. See the
/// [module documentation](super).
#[derive(Debug, Default)]
pub struct ApicBus {
    slots: RwLock<Vec<Arc<Mailbox>>>,
}

impl ApicBus {
    pub fn new() -> ApicBus {
        ApicBus::default()
    }

    /// Attach `apic` to the bus and return its vCPU index (0, 1, ... in
    /// registration order). From now on the APIC publishes its ID, LDR, DFR,
    /// mode and enable state to the bus as they change, and the IPIs it
    /// produces carry this index as their source.
    pub fn register(&self, apic: &mut LocalApic) -> usize {
        let mut slots = self.slots.write().unwrap_or_else(|e| e.into_inner());
        let index = slots.len();
        let addressing = apic.attach(index);
        slots.push(Arc::new(Mailbox::new(addressing)));
        index
    }

    /// Number of registered vCPUs.
    pub fn len(&self) -> usize {
        self.slots.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The mailbox of vCPU `index`, to keep for cheap `has_pending` checks.
    pub fn mailbox(&self, index: usize) -> Option<Arc<Mailbox>> {
        self.slots
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(index)
            .cloned()
    }

    /// Whether vCPU `index` has events (or a kick) to drain.
    pub fn has_pending(&self, index: usize) -> bool {
        self.mailbox(index).is_some_and(|m| m.has_pending())
    }

    /// [`Mailbox::wait`] for vCPU `index`; false at once for an unknown index.
    pub fn wait(&self, index: usize, timeout: Option<Duration>) -> bool {
        match self.mailbox(index) {
            Some(m) => m.wait(timeout),
            None => false,
        }
    }

    /// [`Mailbox::kick`] for vCPU `index`.
    pub fn kick(&self, index: usize) {
        if let Some(m) = self.mailbox(index) {
            m.kick();
        }
    }

    /// [`Mailbox::drain`] of vCPU `index` into its APIC.
    pub fn drain(&self, index: usize, apic: &mut LocalApic) -> usize {
        match self.mailbox(index) {
            Some(m) => m.drain(apic),
            None => 0,
        }
    }

    /// The vCPU indices `ipi` is addressed to (after the shorthand and, for
    /// lowest-priority delivery, arbitration). Globally disabled APICs are
    /// never targets.
    pub fn resolve(&self, ipi: &Ipi) -> Vec<usize> {
        let slots = self.slots.read().unwrap_or_else(|e| e.into_inner());
        let addrs: Vec<Addressing> = slots.iter().map(|m| m.addressing()).collect();
        drop(slots);
        let is_self = |i: usize, a: &Addressing| match ipi.source_vcpu {
            Some(s) => s == i,
            None => a.id == ipi.source_apic_id,
        };
        let enabled = |a: &Addressing| a.mode != ApicMode::Disabled;
        let targets: Vec<usize> = addrs
            .iter()
            .enumerate()
            .filter(|&(i, a)| match ipi.shorthand {
                Shorthand::None => a.matches(ipi),
                Shorthand::SelfOnly => enabled(a) && is_self(i, a),
                Shorthand::AllIncludingSelf => enabled(a),
                Shorthand::AllExcludingSelf => enabled(a) && !is_self(i, a),
            })
            .map(|(i, _)| i)
            .collect();
        if ipi.delivery_mode == DeliveryMode::LowestPriority && !targets.is_empty() {
            // Deterministic arbitration: the lowest-numbered software-enabled
            // target, else the lowest-numbered target.
            let pick = targets
                .iter()
                .copied()
                .find(|&i| addrs[i].sw_enabled)
                .unwrap_or(targets[0]);
            return vec![pick];
        }
        targets
    }

    /// Deliver `ipi`: post the event its delivery mode calls for into every
    /// target's mailbox and wake them. Returns the number of targets. An
    /// INIT level de-assert is a no-op.
    pub fn send(&self, ipi: &Ipi) -> usize {
        if ipi.is_init_deassert() {
            return 0;
        }
        let event = match ipi.delivery_mode {
            DeliveryMode::Fixed | DeliveryMode::LowestPriority => ApicEvent::Fixed {
                vector: ipi.vector,
                level_triggered: ipi.trigger == TriggerMode::Level,
            },
            DeliveryMode::Smi => ApicEvent::Smi,
            DeliveryMode::Nmi => ApicEvent::Nmi,
            DeliveryMode::Init => ApicEvent::Init,
            DeliveryMode::StartUp => ApicEvent::Sipi(ipi.vector),
        };
        let targets = self.resolve(ipi);
        let slots = self.slots.read().unwrap_or_else(|e| e.into_inner());
        for &i in &targets {
            if let Some(m) = slots.get(i) {
                m.post(event);
            }
        }
        targets.len()
    }

    /// Deliver a message-signalled interrupt written by a device (the
    /// I/O APIC or a PCI MSI): `address` 0xfeeX_XXXX with the destination ID
    /// in bits 19:12 and the destination mode in bit 2; `data` with the
    /// vector in bits 7:0, the delivery mode in 10:8 and the trigger mode in
    /// bit 15. Returns the number of targets (0 for an address outside the
    /// interrupt range or a reserved delivery mode).
    pub fn send_msi(&self, address: u64, data: u32) -> usize {
        if address >> 20 != 0xfee {
            return 0;
        }
        let Some(delivery_mode) = DeliveryMode::from_bits(data >> 8) else {
            return 0;
        };
        let ipi = Ipi {
            vector: data as u8,
            delivery_mode,
            dest_mode: if address & (1 << 2) != 0 {
                DestMode::Logical
            } else {
                DestMode::Physical
            },
            shorthand: Shorthand::None,
            dest: ((address >> 12) & 0xff) as u32,
            level: true,
            trigger: if data & (1 << 15) != 0 {
                TriggerMode::Level
            } else {
                TriggerMode::Edge
            },
            source_apic_id: u32::MAX,
            source_vcpu: None,
            x2apic: false,
        };
        self.send(&ipi)
    }

    /// A device's fixed, edge-triggered interrupt `vector` to the APIC with
    /// physical ID `dest_apic_id` (0xff in xAPIC format broadcasts).
    pub fn inject(&self, dest_apic_id: u32, vector: u8) -> usize {
        self.send(&Ipi {
            vector,
            delivery_mode: DeliveryMode::Fixed,
            dest_mode: DestMode::Physical,
            shorthand: Shorthand::None,
            dest: dest_apic_id,
            level: true,
            trigger: TriggerMode::Edge,
            source_apic_id: u32::MAX,
            source_vcpu: None,
            x2apic: dest_apic_id > 0xff,
        })
    }
}
