//! PAE paging's PDPTE registers (SDM Vol. 3A 4.4.1).
//!
//! With PAE paging the processor does not read the four PDPTEs on each
//! walk: it loads them into registers at MOV to CR3, at MOV to CR0/CR4
//! that changes CR0.CD, CR0.NW, CR0.PG, CR4.PAE, CR4.PGE, CR4.PSE or
//! CR4.SMEP while PAE paging is in use after it, and at a task switch that
//! changes CR3; a present entry with a reserved bit set makes that
//! instruction raise #GP(0) instead (a task switch: #TS). A guest that
//! edits its PDPT therefore sees no change until the next such event.
//! Only the CPU knows when these events happen, so it calls
//! [`Mmu::load_pdptes`]; walks use what was loaded.

use super::Mmu;
use crate::ctx::{PagingCtx, PagingMode};
use crate::walker::Pdptes;

/// Why the PDPTE registers could not be loaded: the loading instruction
/// raises #GP(0) (#TS for a task switch) and changes nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PdpteError {
    /// A present PDPTE sets a reserved bit.
    #[error("PDPTE {index} = {entry:#x} sets a reserved bit")]
    Reserved {
        /// Which of the four.
        index: u8,
        /// Its value.
        entry: u64,
    },
    /// The PDPT is in no memslot. Hardware would read the bus, where
    /// nothing answers with all ones: present, with reserved bits set.
    #[error("the PDPT at {0:#x} is not RAM")]
    NotRam(u64),
}

impl Mmu {
    /// Loads the PDPTE registers for the paging context `ctx` the guest is
    /// about to be in, if that is PAE paging (nothing to do otherwise). The
    /// CPU calls this for the events listed in this module's docs *before*
    /// committing the register write: on error the registers keep their
    /// old values and the instruction faults. A VMM may call it outside
    /// the read section (setting a vCPU's registers); it stays outside.
    pub fn load_pdptes(&mut self, ctx: &PagingCtx) -> Result<(), PdpteError> {
        if ctx.mode() != PagingMode::Pae {
            return Ok(());
        }
        // A VMM setting registers is outside the read section: enter it
        // only for the read, or memslot writers would wait for this vCPU.
        let outside = !self.in_section();
        self.enter();
        let pdpt = Pdptes::pdpt_of(ctx.cr3);
        let regs = self
            .mem
            .slots(&self.reader)
            .and_then(|slots| Pdptes::read(slots, ctx.cr3));
        if outside {
            self.leave();
        }
        let regs = regs.ok_or(PdpteError::NotRam(pdpt))?;
        if let Some((index, entry)) = regs.first_invalid(self.st.phys_bits) {
            return Err(PdpteError::Reserved {
                index: index as u8,
                entry,
            });
        }
        self.st.pdptes = Some(regs);
        Ok(())
    }

    /// The PDPTE registers as last loaded (by [`Mmu::load_pdptes`] or by
    /// the first PAE walk under a CR3 the CPU never loaded them for).
    pub fn pdptes(&self) -> Option<Pdptes> {
        self.st.pdptes
    }
}
