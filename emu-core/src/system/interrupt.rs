//! Exception and interrupt delivery through the IVT (real mode) or the IDT
//! (protected and long mode), with the double- and triple-fault rules.

use crate::api_types::Segment;
use crate::cpu::flags::{self, IF, NT, RF, TF, VM};
use crate::cpu::state::EFER_LMA;
use crate::cpu::{Mode, SegReg};
use crate::exception::{vector, Exception, ExecResult, Fault};
use crate::exec::Exec;
use softmmu::AccessKind;

/// What is being delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A fault or trap raised by an instruction.
    Exception(Exception),
    /// INT n / INT3 / INTO: a software interrupt (gate DPL is checked).
    Software(u8),
    /// INT1 (ICEBP): like a hardware event, no DPL check.
    Icebp,
    /// An external interrupt or NMI.
    External(u8),
}

impl Event {
    fn vector(self) -> u8 {
        match self {
            Event::Exception(e) => e.vector,
            Event::Software(v) | Event::External(v) => v,
            Event::Icebp => vector::DB,
        }
    }
    fn error_code(self) -> Option<u32> {
        match self {
            Event::Exception(e) if Exception::has_error_code(e.vector) => {
                Some(e.error_code().unwrap_or(0))
            }
            _ => None,
        }
    }
}

/// Outcome of delivering an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    Delivered,
    /// Delivering a #DF faulted: the processor shuts down.
    TripleFault,
    /// Delivery needs a VMM exit first (IDT in MMIO: not supported).
    Exit,
}

/// The error code for a fault during delivery that refers to IDT entry `v`.
fn idt_code(v: u8, ext: bool) -> u32 {
    (u32::from(v) << 3) | 2 | ext as u32
}

impl Exec<'_> {
    /// Deliver `ev`, escalating to #DF and triple fault per SDM Table 6-5.
    pub fn deliver(&mut self, ev: Event) -> Delivery {
        self.deliver_depth(ev, 0)
    }

    /// Deliver a software interrupt (INT n, INT3, INTO, INT1) for the
    /// instruction being executed. A fault during delivery is returned, not
    /// escalated: the caller reports it as a fault of the instruction.
    /// Nothing has been changed when it fails.
    pub fn deliver_software(&mut self, ev: Event) -> ExecResult {
        self.deliver_once(ev)
    }

    fn deliver_depth(&mut self, ev: Event, depth: u8) -> Delivery {
        match self.deliver_once(ev) {
            Ok(()) => Delivery::Delivered,
            Err(Fault::Exception(e2)) => {
                let v1 = ev.vector();
                if v1 == vector::DF && matches!(ev, Event::Exception(_)) || depth >= 3 {
                    return Delivery::TripleFault;
                }
                let first_serious = Exception::is_contributory(v1) || v1 == vector::PF;
                let second_serious =
                    Exception::is_contributory(e2.vector) || e2.vector == vector::PF;
                let double = matches!(ev, Event::Exception(_))
                    && first_serious
                    && second_serious
                    && !(Exception::is_contributory(v1) && e2.vector == vector::PF);
                let next = if double {
                    Exception::with_code(vector::DF, 0)
                } else {
                    e2
                };
                self.deliver_depth(Event::Exception(next), depth + 1)
            }
            Err(_) => Delivery::Exit,
        }
    }

    fn deliver_once(&mut self, ev: Event) -> ExecResult {
        if let Event::Exception(e) = ev {
            if let Some(a) = e.cr2() {
                self.cpu.cr2 = a;
            }
        }
        match self.cpu.mode() {
            Mode::Real => self.deliver_real(ev),
            _ if self.cpu.efer & EFER_LMA != 0 => self.deliver_long(ev),
            _ => self.deliver_protected(ev),
        }
    }

    fn deliver_real(&mut self, ev: Event) -> ExecResult {
        let v = ev.vector();
        let off = u64::from(v) * 4;
        if off + 3 > u64::from(self.cpu.idtr.limit) {
            return Err(Exception::gp(idt_code(v, true)).into());
        }
        let la = self.wrap_la(self.cpu.idtr.base + off);
        let ent = self.read_linear(la, 4, AccessKind::Read)?;
        let f = self.cpu.flags.get();
        let old_sp = self.cpu.gpr[4];
        let cs_sel = u64::from(self.cpu.sreg(SegReg::Cs).selector);
        let ip = self.cpu.rip & 0xffff;
        let pushed = self
            .push(f & 0xffff, 2)
            .and_then(|_| self.push(cs_sel, 2))
            .and_then(|_| self.push(ip, 2));
        if let Err(e) = pushed {
            self.cpu.gpr[4] = old_sp;
            return Err(e);
        }
        self.cpu.flags.set(f & !(IF | TF | flags::AC | RF));
        let sel = (ent >> 16) as u16;
        let cs = self.cpu.sreg_mut(SegReg::Cs);
        cs.selector = sel;
        cs.base = u64::from(sel) << 4;
        self.cpu.rip = ent & 0xffff;
        Ok(())
    }

    /// Read the gate for vector `v` (8 bytes in legacy mode, 16 in long).
    fn read_gate(&mut self, v: u8, size: u64, ext: bool) -> ExecResult<(u64, u64)> {
        let off = u64::from(v) * size;
        if off + size - 1 > u64::from(self.cpu.idtr.limit) {
            return Err(Exception::gp(idt_code(v, ext)).into());
        }
        let la = self.wrap_la(self.cpu.idtr.base + off);
        self.implicit_supervisor = true;
        let lo = self.read_linear(la, 8, AccessKind::Read);
        let hi = if size == 16 {
            self.read_linear(la + 8, 8, AccessKind::Read)
        } else {
            Ok(0)
        };
        self.implicit_supervisor = false;
        Ok((lo?, hi?))
    }

    /// Gate checks common to both IDT formats; returns (type, selector).
    fn check_gate(&self, ev: Event, lo: u64, ext: bool) -> ExecResult<(u8, u16)> {
        let v = ev.vector();
        let ty = ((lo >> 40) & 0x1f) as u8;
        let dpl = ((lo >> 45) & 3) as u8;
        let present = lo & (1 << 47) != 0;
        let long = self.cpu.efer & EFER_LMA != 0;
        let ok_type = if long {
            matches!(ty, 0xe | 0xf)
        } else {
            matches!(ty, 0x6 | 0x7 | 0xe | 0xf | 0x5)
        };
        if !ok_type || ty == 0x5 {
            // Task gates are not supported (treated as an invalid gate).
            return Err(Exception::gp(idt_code(v, ext)).into());
        }
        if matches!(ev, Event::Software(_)) && dpl < self.cpu.cpl() {
            return Err(Exception::gp(idt_code(v, false)).into());
        }
        if !present {
            return Err(Exception::np(idt_code(v, ext)).into());
        }
        Ok((ty, (lo >> 16) as u16))
    }

    /// Read the stack pointer for privilege level `dpl` (or IST `ist`) from
    /// the TSS.
    fn tss_stack(&mut self, dpl: u8, ist: u8) -> ExecResult<(u64, u16)> {
        let tr = self.cpu.tr;
        let long = self.cpu.efer & EFER_LMA != 0;
        let (off, size) = if long {
            if ist != 0 {
                (0x24 + 8 * u64::from(ist - 1), 8)
            } else {
                (4 + 8 * u64::from(dpl), 8)
            }
        } else if tr.type_ & 8 != 0 {
            (4 + 8 * u64::from(dpl), 4)
        } else {
            (2 + 4 * u64::from(dpl), 2)
        };
        let extra = if long { 0 } else { size };
        if off + size + extra - 1 > u64::from(tr.limit) {
            return Err(Exception::ts(u32::from(tr.selector & 0xfffc)).into());
        }
        self.implicit_supervisor = true;
        let la = self.wrap_la(tr.base + off);
        let sp = self.read_linear(la, size as usize, AccessKind::Read);
        let ss = if long {
            Ok(0)
        } else {
            self.read_linear(self.wrap_la(la + size), 2, AccessKind::Read)
        };
        self.implicit_supervisor = false;
        Ok((sp?, ss? as u16))
    }

    fn deliver_long(&mut self, ev: Event) -> ExecResult {
        let ext = !matches!(ev, Event::Software(_));
        let v = ev.vector();
        let (lo, hi) = self.read_gate(v, 16, ext)?;
        let (ty, sel) = self.check_gate(ev, lo, ext)?;
        let target = (lo & 0xffff) | ((lo >> 32) & 0xffff_0000) | (hi << 32);
        let ist = ((lo >> 32) & 7) as u8;
        let cpl = self.cpu.cpl();
        let cs = self.load_code_segment_for_gate(sel, cpl)?;
        let new_cpl = cs.dpl.min(cpl);
        if cs.l == 0 || cs.db != 0 {
            return Err(Exception::gp(u32::from(sel & 0xfffc)).into());
        }
        // SDM Vol. 2, INT n pseudocode (IA-32e mode): "IF instruction
        // pointer from interrupt gate is not canonical THEN #GP(EXT)".
        if !crate::exec::mem::is_canonical(target) {
            return Err(Exception::gp(u32::from(ext)).into());
        }
        let old_ss = self.cpu.sreg(SegReg::Ss).selector;
        let old_rsp = self.cpu.gpr[4];
        let mut rsp = old_rsp;
        if new_cpl != cpl || ist != 0 {
            let (sp, _) = self.tss_stack(new_cpl, ist)?;
            rsp = sp;
        }
        rsp &= !15;
        let f = self.cpu.flags.get();
        let mut frame = vec![
            u64::from(old_ss),
            old_rsp,
            f,
            u64::from(self.cpu.sreg(SegReg::Cs).selector),
            self.cpu.rip,
        ];
        if let Some(c) = ev.error_code() {
            frame.push(u64::from(c));
        }
        // Write the frame at the new stack (CPL of the handler).
        let saved_ss = *self.cpu.sreg(SegReg::Ss);
        if new_cpl != cpl {
            *self.cpu.sreg_mut(SegReg::Ss) = Segment {
                selector: u16::from(new_cpl),
                unusable: 1,
                dpl: new_cpl,
                ..Segment::default()
            };
        }
        // The frame is pushed the 64-bit way whatever the interrupted mode
        // (SDM Vol. 3A, 6.14.2: in IA-32e mode the stack pushes are 64-bit
        // and RSP-relative; the handler's SS is null at CPL change). So the
        // writes are to linear RSP-8.. with a canonical check, not through
        // SS with compatibility-mode segment checks, which would reject the
        // null SS loaded on a privilege change from compatibility mode.
        let mut sp = rsp;
        for item in &frame {
            sp = sp.wrapping_sub(8);
            let r = if crate::exec::mem::is_canonical(sp) {
                self.write_linear(sp, 8, *item)
            } else {
                Err(Exception::ss(0).into())
            };
            if let Err(e) = r {
                *self.cpu.sreg_mut(SegReg::Ss) = saved_ss;
                return Err(e);
            }
        }
        self.cpu.gpr[4] = sp;
        self.set_cs(cs);
        self.cpu.rip = target;
        let mut nf = f & !(TF | NT | RF | VM);
        if ty == 0xe {
            nf &= !IF;
        }
        self.cpu.flags.set(nf);
        Ok(())
    }

    /// CS for an interrupt gate: a code segment with DPL <= CPL.
    fn load_code_segment_for_gate(&mut self, sel: u16, cpl: u8) -> ExecResult<Segment> {
        if sel & 0xfffc == 0 {
            return Err(Exception::gp(0).into());
        }
        let raw = self.read_descriptor(sel)?;
        let d = super::descriptor::decode(sel, raw);
        if d.s == 0 || d.type_ & 8 == 0 || d.dpl > cpl {
            return Err(Exception::gp(u32::from(sel & 0xfffc)).into());
        }
        let new_cpl = if d.type_ & 4 != 0 { cpl } else { d.dpl };
        self.load_code_segment(sel, new_cpl)
    }

    fn deliver_protected(&mut self, ev: Event) -> ExecResult {
        let ext = !matches!(ev, Event::Software(_));
        let v = ev.vector();
        let (lo, _) = self.read_gate(v, 8, ext)?;
        let (ty, sel) = self.check_gate(ev, lo, ext)?;
        let gate32 = ty & 8 != 0;
        let target = (lo & 0xffff) | ((lo >> 32) & 0xffff_0000);
        let target = if gate32 { target } else { target & 0xffff };
        let cpl = self.cpu.cpl();
        let cs = self.load_code_segment_for_gate(sel, cpl)?;
        // SDM Vol. 2, INT n pseudocode: "IF instruction pointer from
        // interrupt/trap gate is not within new code-segment limits THEN
        // #GP(EXT)".
        if target > u64::from(cs.limit) {
            return Err(Exception::gp(u32::from(ext)).into());
        }
        let new_cpl = cs.dpl.min(cpl);
        let size = if gate32 { 4 } else { 2 };
        let f = self.cpu.flags.get();
        let old_cs = u64::from(self.cpu.sreg(SegReg::Cs).selector);
        let old_ss = *self.cpu.sreg(SegReg::Ss);
        let old_esp = self.cpu.gpr[4];
        if new_cpl != cpl {
            let (sp, ss_sel) = self.tss_stack(new_cpl, 0)?;
            let saved = self.cpu.segs();
            self.cpu.sreg_mut(SegReg::Ss).dpl = new_cpl;
            if let Err(e) = self.load_data_segment(SegReg::Ss, ss_sel) {
                self.cpu.restore_segs(saved);
                return Err(e);
            }
            self.set_gpr(4, 4, sp);
            let r = (|| {
                self.push(u64::from(old_ss.selector), size)?;
                self.push(old_esp, size)?;
                Ok::<(), Fault>(())
            })();
            if let Err(e) = r {
                self.cpu.restore_segs(saved);
                self.cpu.gpr[4] = old_esp;
                return Err(e);
            }
        }
        let r = (|| {
            self.push(f, size)?;
            self.push(old_cs, size)?;
            self.push(self.cpu.rip, size)?;
            if let Some(c) = ev.error_code() {
                self.push(u64::from(c), size)?;
            }
            Ok::<(), Fault>(())
        })();
        if let Err(e) = r {
            *self.cpu.sreg_mut(SegReg::Ss) = old_ss;
            self.cpu.gpr[4] = old_esp;
            return Err(e);
        }
        self.set_cs(cs);
        self.cpu.rip = target;
        let mut nf = f & !(TF | NT | RF | VM);
        if ty & 7 == 6 {
            nf &= !IF;
        }
        self.cpu.flags.set(nf);
        Ok(())
    }
}
