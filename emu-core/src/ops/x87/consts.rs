//! The constants: FLD1, FLDL2T, FLDL2E, FLDPI, FLDLG2, FLDLN2, FLDZ. The
//! irrational ones are rounded to 64 bits in the direction the rounding
//! control says, without a precision exception (Intel SDM Vol. 1, 8.3.8).

use super::unit::{add_all, begin, empty, mark, push, set_c1, stack_fault, INDEFINITE};
use crate::exception::ExecResult;
use crate::exec::table::TableBuilder;
use crate::exec::Exec;
use crate::fp::Constant;
use iced_x86::{Code, Instruction};

/// Push constant number `C` (see [`constant`]).
fn fld_const<const C: u8>(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let fp = begin(x)?;
    mark(x, ins);
    if !empty(x, 7) {
        if stack_fault(x, true) {
            push(x, INDEFINITE);
        }
        return Ok(());
    }
    set_c1(x, false);
    push(x, Constant::from_index(C).value(fp.env.round));
    Ok(())
}

pub(super) fn register(t: &mut TableBuilder) {
    use Code::*;
    add_all(
        t,
        &[
            (Fld1, fld_const::<{ Constant::One as u8 }>),
            (Fldl2t, fld_const::<{ Constant::Log2Ten as u8 }>),
            (Fldl2e, fld_const::<{ Constant::Log2E as u8 }>),
            (Fldpi, fld_const::<{ Constant::Pi as u8 }>),
            (Fldlg2, fld_const::<{ Constant::Log10Two as u8 }>),
            (Fldln2, fld_const::<{ Constant::LnTwo as u8 }>),
            (Fldz, fld_const::<{ Constant::Zero as u8 }>),
        ],
    );
}
