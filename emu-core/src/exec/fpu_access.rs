//! Whether an x87, MMX or SSE instruction may run: the CR0.EM/TS/MP,
//! CR0.NE and CR4.OSFXSR rules every floating-point family applies before
//! touching its registers (Intel SDM Vol. 3A, 2.5 and Table 12-1/13-1;
//! Vol. 1, 8.7 and 11.6.1).

use super::Exec;
use crate::cpu::fpu::fsw;
use crate::cpu::state::{CR0_EM, CR0_MP, CR0_NE, CR0_TS, CR4_OSFXSR};
use crate::exception::{Exception, ExecResult};

impl Exec<'_> {
    /// SSE, SSE2 ... SSE4.2 (not MMX-register forms): #UD if CR0.EM is
    /// set or CR4.OSFXSR is clear, then #NM if CR0.TS is set.
    #[inline]
    pub fn sse_check(&self) -> ExecResult {
        let cr0 = self.cpu.cr0;
        if cr0 & CR0_EM != 0 || self.cpu.cr4 & CR4_OSFXSR == 0 {
            return Err(Exception::ud().into());
        }
        if cr0 & CR0_TS != 0 {
            return Err(Exception::nm().into());
        }
        Ok(())
    }

    /// MMX-register instructions (MMX, and the SSE/SSSE3 forms on MM
    /// registers): #UD if CR0.EM, #NM if CR0.TS, then #MF if an unmasked
    /// x87 exception is pending.
    #[inline]
    pub fn mmx_check(&self) -> ExecResult {
        let cr0 = self.cpu.cr0;
        if cr0 & CR0_EM != 0 {
            return Err(Exception::ud().into());
        }
        if cr0 & CR0_TS != 0 {
            return Err(Exception::nm().into());
        }
        self.x87_pending_check()
    }

    /// x87 instructions: #NM if CR0.EM or CR0.TS is set. A *waiting*
    /// instruction (all but FNINIT, FNCLEX, FNSTSW, FNSTCW, FNSTENV,
    /// FNSAVE) then takes #MF if an unmasked exception is pending.
    #[inline]
    pub fn x87_check(&self, waiting: bool) -> ExecResult {
        if self.cpu.cr0 & (CR0_EM | CR0_TS) != 0 {
            return Err(Exception::nm().into());
        }
        if waiting {
            self.x87_pending_check()?;
        }
        Ok(())
    }

    /// WAIT/FWAIT: #NM only when both CR0.MP and CR0.TS are set, then #MF
    /// for a pending exception.
    #[inline]
    pub fn fwait_check(&self) -> ExecResult {
        if self.cpu.cr0 & (CR0_MP | CR0_TS) == (CR0_MP | CR0_TS) {
            return Err(Exception::nm().into());
        }
        self.x87_pending_check()
    }

    /// #MF when FSW.ES says an unmasked exception is pending and CR0.NE
    /// selects native reporting. With CR0.NE clear a PC reports the error
    /// through FERR# and the interrupt controller (IRQ 13); softvm does not
    /// model that line, so the instruction proceeds as if IGNNE# were
    /// asserted.
    #[inline]
    fn x87_pending_check(&self) -> ExecResult {
        if self.cpu.fpu.fsw & fsw::ES != 0 && self.cpu.cr0 & CR0_NE != 0 {
            return Err(Exception::mf().into());
        }
        Ok(())
    }
}
