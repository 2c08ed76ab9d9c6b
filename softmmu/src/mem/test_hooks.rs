//! Ways for this crate's own tests to make the memslot writer misbehave.
//! Compiled only under `cfg(test)`: no build of softmmu that another crate
//! can link contains them, so safe code elsewhere can never call them.
#![cfg_attr(loom, allow(dead_code))]

use super::{lock, Backing, GuestMemory, MemError, MemFlags, PublishMode};

impl GuestMemory {
    /// Publish later updates with a broken variant of `install_new_memslots`.
    pub(crate) fn set_publish_mode(&self, mode: PublishMode) {
        *lock(&self.update) = mode;
    }

    /// [`GuestMemory::set_user_memory_region`] (anonymous backing, checked
    /// arguments) by a second writer that ignores the writers' lock: if
    /// another update is waiting for its grace period, this one starts from
    /// an odd generation, the case KVM's `WARN_ON` catches.
    pub(crate) fn set_user_memory_region_unlocked(
        &self,
        slot: u32,
        flags: MemFlags,
        gpa: u64,
        size: u64,
    ) -> Result<(), MemError> {
        let mut reader = self.srcu().register();
        reader.enter();
        let current = self.cell.clone_current(&reader);
        reader.leave();
        let current = current.ok_or(MemError::NoSuchSlot(slot))?;
        let mode = PublishMode::Fixed;
        self.update_slots(mode, &current, slot, flags, gpa, size, Backing::Anonymous)
            .map(drop)
    }
}
