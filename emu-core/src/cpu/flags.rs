//! RFLAGS with lazily computed arithmetic flags.
//!
//! Most instructions that write flags are ADD/SUB/logic/INC/DEC, and most of
//! those flags are overwritten before anyone reads them. So the arithmetic
//! instructions only record the operation, its width, operands and result;
//! PF, AF, ZF, SF and OF are derived when something reads them.
//! Everything else (multiplies, bit tests, POPF) writes the flag bits
//! eagerly with [`Flags::set_arith`].
//!
//! CF alone is never lazy: every recording stores it at once, in a field of
//! its own so that the store needs no load of the other flags. It costs the
//! recording one or two host instructions (the operands are in registers
//! then), and in exchange INC/DEC (which keep CF) need not derive it from
//! the operation before them, and JB/JAE/JBE/ADC/SBB read one word.

pub const CF: u64 = 1 << 0;
pub const FIXED1: u64 = 1 << 1;
pub const PF: u64 = 1 << 2;
pub const AF: u64 = 1 << 4;
pub const ZF: u64 = 1 << 6;
pub const SF: u64 = 1 << 7;
pub const TF: u64 = 1 << 8;
pub const IF: u64 = 1 << 9;
pub const DF: u64 = 1 << 10;
pub const OF: u64 = 1 << 11;
pub const IOPL: u64 = 3 << 12;
pub const NT: u64 = 1 << 14;
pub const RF: u64 = 1 << 16;
pub const VM: u64 = 1 << 17;
pub const AC: u64 = 1 << 18;
pub const VIF: u64 = 1 << 19;
pub const VIP: u64 = 1 << 20;
pub const ID: u64 = 1 << 21;

/// The six status flags.
pub const ARITH: u64 = CF | PF | AF | ZF | SF | OF;

/// The operation whose flags are still to be derived.
///
/// Four bytes wide, like `Flags::size`: an instruction that reads the
/// flags right after one that wrote them must load what was stored with
/// accesses of the same width, or the store cannot forward to the load
/// (a 2-byte store of op and size followed by a 4-byte load cost more than
/// the rest of a Jcc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum LazyOp {
    /// Flags are all in `bits`.
    None,
    Add,
    Sub,
    /// AND, OR, XOR, TEST: CF = OF = 0, AF left 0 (undefined by the manuals).
    Logic,
    /// INC/DEC: like ADD/SUB by one, CF preserved (already in `bits`).
    Inc,
    Dec,
    /// SHL/SHR/SAR by a count (`b`, 1..width-1) of the value `a`: CF is the
    /// last bit shifted out, OF as for a one-bit shift of `a` and AF = 0
    /// (for counts above 1 the manuals leave OF undefined, and AF for every
    /// count: these are Intel processors' values, `ops::shift` has both
    /// vendors', and vCPUs of AMD's do not record this operation).
    Shl,
    Shr,
    Sar,
    /// MUL/IMUL of 2 to 8 bytes: CF = OF = overflow (in `cf`); SF and PF
    /// of the low half of the product; ZF and AF clear (the manuals leave
    /// these four undefined; these are Intel processors' values, see
    /// `ops::muldiv`). A zero product is recorded as 0x100, which has its SF
    /// and PF but not its ZF.
    Mul,
}

/// RFLAGS. `bits` holds every flag but CF, except PF, AF, ZF, SF and OF
/// while `op` is not [`LazyOp::None`]; CF is always in `cf` (see the
/// module). `res` is stored masked to `size`.
#[derive(Clone, Copy, Debug)]
pub struct Flags {
    /// RFLAGS with CF clear.
    bits: u64,
    /// CF: 0 or 1.
    cf: u64,
    op: LazyOp,
    /// Operand size in bytes (a `u32`: see [`LazyOp`]).
    size: u32,
    a: u64,
    b: u64,
    res: u64,
}

impl Default for Flags {
    fn default() -> Self {
        Flags {
            bits: FIXED1,
            cf: 0,
            op: LazyOp::None,
            size: 8,
            a: 0,
            b: 0,
            res: 0,
        }
    }
}

/// Mask of the low `size` bytes (1 to 8).
#[inline]
pub fn mask(size: u8) -> u64 {
    // A shift rather than a branch: sizes come from memory in the lazy
    // paths, where a branch on them mispredicts between 32- and 64-bit code.
    u64::MAX >> ((64 - u32::from(size) * 8) & 63)
}

/// The sign bit of a value `size` bytes wide.
#[inline]
pub fn sign_bit(size: u8) -> u64 {
    1u64 << (size as u32 * 8 - 1)
}

/// PF: set when the low byte of the result has an even number of ones.
#[inline]
pub fn parity(res: u64) -> u64 {
    if (res as u8).count_ones().is_multiple_of(2) {
        PF
    } else {
        0
    }
}

/// ZF, SF and PF of a result `size` bytes wide.
#[inline]
pub fn szp(size: u8, res: u64) -> u64 {
    let r = res & mask(size);
    let mut f = parity(r);
    if r == 0 {
        f |= ZF;
    }
    if r & sign_bit(size) != 0 {
        f |= SF;
    }
    f
}

impl Flags {
    /// Operand size of the pending operation, in bytes.
    #[inline(always)]
    fn sz(&self) -> u8 {
        self.size as u8
    }

    /// Full RFLAGS value.
    #[inline]
    pub fn get(&self) -> u64 {
        match self.op {
            LazyOp::None => self.bits | self.cf,
            _ => (self.bits & !ARITH) | self.compute(),
        }
    }

    /// Replace RFLAGS (bit 1 always reads as one).
    #[inline]
    pub fn set(&mut self, v: u64) {
        self.put(v);
        self.op = LazyOp::None;
    }

    /// Store a settled value into `bits` and `cf`.
    #[inline(always)]
    fn put(&mut self, v: u64) {
        self.bits = (v | FIXED1) & !CF;
        self.cf = v & CF;
    }

    /// Resolve pending lazy flags into `bits`.
    #[inline]
    fn settle(&mut self) {
        if self.op != LazyOp::None {
            self.bits = self.get() & !CF;
            self.op = LazyOp::None;
        }
    }

    /// Test one or more flag bits (true if any is set).
    #[inline]
    pub fn test(&self, bit: u64) -> bool {
        if bit & ARITH == 0 {
            // Not a status flag: `bits` has it, pending operation or not.
            return self.bits & bit != 0;
        }
        self.get() & bit != 0
    }

    /// CF, which is never pending (see the module).
    #[inline(always)]
    pub fn cf(&self) -> bool {
        self.cf != 0
    }

    /// Replace CF.
    #[inline(always)]
    fn put_cf(&mut self, cf: bool) {
        self.cf = u64::from(cf);
    }

    /// Record SHL/SHR/SAR of `a` by `count` (1..width-1) giving `res`.
    #[inline]
    pub fn lazy_shift(&mut self, op: LazyOp, size: u8, a: u64, count: u32, res: u64) {
        // CF is the last bit shifted out: with a count below the width
        // that is a bit of `a` itself (SAR's sign copies never reach it).
        let bits = u32::from(size) * 8;
        let c = count & (bits - 1);
        let out = match op {
            LazyOp::Shl => (a & mask(size)) >> (bits - c),
            _ => a >> (c - 1),
        };
        self.put_cf(out & 1 != 0);
        self.op = op;
        self.size = u32::from(size);
        self.a = a;
        self.b = u64::from(count);
        self.res = res & mask(size);
    }

    /// Set or clear individual non-lazy bits (e.g. DF, IF, CF).
    #[inline]
    pub fn assign(&mut self, bit: u64, on: bool) {
        self.settle();
        let v = self.bits | self.cf;
        self.put(if on { v | bit } else { v & !bit });
    }

    /// Replace the status flags selected by `which` with those in `vals`.
    #[inline]
    pub fn set_arith(&mut self, which: u64, vals: u64) {
        if which & ARITH == ARITH {
            // Every status flag is replaced: nothing pending is needed
            // (`bits` holds the other flags while an operation is pending).
            self.op = LazyOp::None;
        } else {
            self.settle();
        }
        self.put(((self.bits | self.cf) & !which) | (vals & which));
    }

    /// Record an ADD/ADC: `b` is the source, `carry` the incoming CF.
    #[inline]
    pub fn lazy_add(&mut self, size: u8, a: u64, b: u64, carry: bool, res: u64) {
        // No settle: every status flag is replaced, and the other flags are
        // in `bits` whether or not an operation is pending.
        let m = mask(size);
        let c = u128::from(carry);
        self.put_cf(((a & m) as u128 + (b & m) as u128 + c) > m as u128);
        self.op = LazyOp::Add;
        self.size = u32::from(size);
        self.a = a;
        self.b = b;
        self.res = res & m;
    }

    /// Record a SUB/SBB/CMP/NEG (NEG is 0 - b).
    #[inline]
    pub fn lazy_sub(&mut self, size: u8, a: u64, b: u64, borrow: bool, res: u64) {
        let m = mask(size);
        self.put_cf(((a & m) as u128) < (b & m) as u128 + u128::from(borrow));
        self.op = LazyOp::Sub;
        self.size = u32::from(size);
        self.a = a;
        self.b = b;
        self.res = res & m;
    }

    /// Record AND/OR/XOR/TEST (CF = OF = 0).
    #[inline]
    pub fn lazy_logic(&mut self, size: u8, res: u64) {
        self.cf = 0;
        self.op = LazyOp::Logic;
        self.size = u32::from(size);
        self.res = res & mask(size);
    }

    /// Record MUL/IMUL: `lo` is the low half of the product (what the
    /// destination or rAX gets), `ovf` whether the product did not fit it.
    #[inline]
    pub fn lazy_mul(&mut self, size: u8, lo: u64, ovf: bool) {
        let lo = lo & mask(size);
        if size == 1 {
            // No room above the byte for the zero trick of `LazyOp::Mul`.
            let f = (szp(1, lo) & !ZF) | if ovf { CF | OF } else { 0 };
            self.set_arith(ARITH, f);
            return;
        }
        self.put_cf(ovf);
        self.op = LazyOp::Mul;
        self.size = u32::from(size);
        self.res = lo | (u64::from(lo == 0) << 8);
    }

    /// INC/DEC: CF keeps its current value, which is already in `bits`.
    #[inline]
    pub fn lazy_incdec(&mut self, size: u8, a: u64, res: u64, inc: bool) {
        self.op = if inc { LazyOp::Inc } else { LazyOp::Dec };
        self.size = u32::from(size);
        self.a = a;
        self.b = 1;
        self.res = res & mask(size);
    }

    /// The status flags of the pending operation (with CF from `bits`).
    fn compute(&self) -> u64 {
        let size = self.sz();
        let m = mask(size);
        let sb = sign_bit(size);
        let (a, b, r) = (self.a & m, self.b & m, self.res);
        let cf = self.cf;
        let base = szp(size, r) | cf;
        let of = match self.op {
            LazyOp::None => return (self.bits | self.cf) & ARITH,
            LazyOp::Logic => return base,
            LazyOp::Add => (a ^ r) & (b ^ r) & sb != 0,
            LazyOp::Sub => (a ^ b) & (a ^ r) & sb != 0,
            LazyOp::Inc => r == sb,
            LazyOp::Dec => r == sb - 1,
            LazyOp::Shl => (a & sb != 0) != (a & (sb >> 1) != 0),
            LazyOp::Shr => a & sb != 0,
            LazyOp::Sar => false,
            LazyOp::Mul => cf != 0,
        };
        let af = match self.op {
            LazyOp::Add | LazyOp::Sub | LazyOp::Inc | LazyOp::Dec => (a ^ b ^ r) & AF,
            _ => 0,
        };
        base | af | if of { OF } else { 0 }
    }

    /// ZF without deriving the other flags.
    #[inline(always)]
    fn zf(&self) -> bool {
        if self.op == LazyOp::None {
            self.bits & ZF != 0
        } else {
            self.res == 0
        }
    }

    /// SF without deriving the other flags.
    #[inline(always)]
    fn sf(&self) -> bool {
        if self.op == LazyOp::None {
            self.bits & SF != 0
        } else {
            self.res & sign_bit(self.sz()) != 0
        }
    }

    /// SF != OF (the signed "less"), without deriving the other flags
    /// where the pending operation makes that cheap.
    #[inline(always)]
    fn lt(&self) -> bool {
        match self.op {
            LazyOp::Sub => {
                // SF ^ OF, both read at the sign bit of the result.
                let (a, b, r) = (self.a, self.b, self.res);
                (r ^ ((a ^ b) & (a ^ r))) & sign_bit(self.sz()) != 0
            }
            LazyOp::Logic => self.sf(),
            _ => {
                let f = self.get();
                (f & SF != 0) != (f & OF != 0)
            }
        }
    }

    /// Evaluate condition code `cc` (the low nibble of Jcc/SETcc/CMOVcc).
    /// CF comes from `bits`; ZF, SF and SF != OF from the pending result
    /// where they can, so a CMP + Jcc pair never derives the other flags.
    #[inline]
    pub fn cond(&self, cc: u8) -> bool {
        let r = match cc >> 1 {
            1 => self.cf(),
            2 => self.zf(),
            3 => self.cf() || self.zf(),
            4 => self.sf(),
            6 => self.lt(),
            7 => self.zf() || self.lt(),
            0 => self.get() & OF != 0,
            _ => self.get() & PF != 0,
        };
        r ^ (cc & 1 != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_flags() {
        let mut f = Flags::default();
        f.lazy_add(1, 0x7f, 1, false, 0x80);
        assert_eq!(f.get() & ARITH, OF | SF | AF);
        f.lazy_add(1, 0xff, 1, false, 0x100);
        assert_eq!(f.get() & ARITH, CF | ZF | PF | AF);
        assert!(f.cf());
        f.lazy_add(8, u64::MAX, 0, true, 0);
        assert!(f.cf());
        assert_eq!(f.get() & ARITH, CF | ZF | PF | AF);
    }

    #[test]
    fn sub_flags() {
        let mut f = Flags::default();
        f.lazy_sub(4, 0, 1, false, 0xffff_ffff);
        assert_eq!(f.get() & ARITH, CF | SF | PF | AF);
        f.lazy_sub(2, 0x8000, 1, false, 0x7fff);
        assert_eq!(f.get() & ARITH, OF | PF | AF);
        f.lazy_sub(8, 5, u64::MAX, true, 5);
        assert!(f.cf());
    }

    /// INC/DEC after a pending ADD, SUB (with and without carry-in) or
    /// logic operation keeps exactly the CF that operation produced, and
    /// the flags outside the status bits survive.
    #[test]
    fn incdec_keep_the_cf_of_a_pending_operation() {
        let vals = [0u64, 1, 0x7f, 0x80, 0xff, 0xffff_ffff, u64::MAX];
        for size in [1u8, 2, 4, 8] {
            let m = mask(size);
            for &a in &vals {
                for &b in &vals {
                    for c in [false, true] {
                        let (a, b) = (a & m, b & m);
                        let mut ops: Vec<Flags> = Vec::new();
                        let mut f = Flags::default();
                        f.set(DF | IF);
                        let add = a.wrapping_add(b).wrapping_add(c as u64) & m;
                        f.lazy_add(size, a, b, c, add);
                        ops.push(f);
                        let sub = a.wrapping_sub(b).wrapping_sub(c as u64) & m;
                        f.lazy_sub(size, a, b, c, sub);
                        ops.push(f);
                        f.lazy_logic(size, a & b);
                        ops.push(f);
                        for mut f in ops {
                            let before = f.get();
                            f.lazy_incdec(size, a, a.wrapping_add(1) & m, true);
                            let after = f.get();
                            assert_eq!(after & CF, before & CF, "size {size} a {a:#x} b {b:#x}");
                            assert_eq!(after & (DF | IF), DF | IF);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn incdec_keep_cf() {
        let mut f = Flags::default();
        f.set(CF);
        f.lazy_incdec(1, 0x7f, 0x80, true);
        assert_eq!(f.get() & ARITH, CF | OF | SF | AF);
        f.set(0);
        f.lazy_incdec(1, 0x80, 0x7f, false);
        assert_eq!(f.get() & ARITH, OF | AF);
    }

    #[test]
    fn conditions() {
        let mut f = Flags::default();
        f.lazy_sub(4, 1, 2, false, 0xffff_ffff);
        assert!(f.cond(0x2)); // B
        assert!(f.cond(0xc)); // L
        assert!(!f.cond(0x4)); // E
        assert!(f.cond(0x6)); // BE
        assert!(!f.cond(0xf)); // G
    }
}
