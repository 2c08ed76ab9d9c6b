//! The decoded-instruction cache: each guest-physical instruction address is
//! decoded once (iced-x86), stored with its pre-selected handler, and run
//! from there until a write to its page invalidates it.
//!
//! ## Blocks
//!
//! A block is a run of decoded instructions starting at one guest-physical
//! address, all from that page. It goes on through conditional branches
//! (side exits: when one is taken, the loop sees RIP leave the block and
//! stops there) and, in 64-bit code, continues at the target of a direct
//! JMP or CALL that stays in the page (see `FastOp::follows`). A Jcc back to
//! the block's own start (a loop) is followed too while another copy of
//! the loop fits, so a short loop runs several iterations per block entry
//! and leaves the block when that Jcc is not taken. A RET of 64-bit code
//! continues at its predicted return address when that is in the page
//! (see `predict`), and leaves the block when it returns elsewhere. A
//! block ends at an indirect branch, a RET it cannot predict, a system
//! instruction, at [`MAX_BLOCK_INSNS`], or before an instruction that
//! crosses the page end (such instructions, and undecodable or
//! unimplemented ones, always take the uncached path in [`super::step`]).
//! A block is keyed by its gpa, its RIP (iced bakes the instruction
//! address into branch targets and RIP-relative operands, so code aliased
//! at two addresses is two blocks) and the code size (16/32/64). Blocks
//! live in a per-vCPU direct-mapped table; their instructions in one arena
//! that is emptied when full.
//!
//! ## Running a block
//!
//! The loop in [`run_batch`] dispatches with a `match` on each
//! instruction's fast form (`fast::run`), so the common handlers run
//! inline. Each arm says what happened (`fast::Ran`): "plain" instructions
//! (no branch, no family handler) and 64-bit branches that went on to the
//! block's next instruction need no RIP bookkeeping at all: RIP is written
//! back when the block stops, set before a family handler (which may read
//! it), and set to the faulting instruction on a fault. A block that ends
//! by branching back to its own start (a loop, or a RET to the return site
//! the block is) runs again without a lookup while its page counter is
//! unchanged. Consecutive blocks in one page reuse one code translation
//! and page counter. Memory accesses take the hot path of `exec/mem.rs`
//! (segment summary, then `Mmu::hot_load`/`hot_store`, and the MMU's stack
//! page for PUSH, POP, CALL and RET), prepared once per batch.
//!
//! ## Invalidation: page versions
//!
//! [`CodePages`] is shared by the vCPUs of a VM and holds one 64-bit
//! counter per guest page that ever held cached code. Bit 0 says "some vCPU
//! may have cached code from this page". A vCPU marks a page (even -> odd)
//! *before* reading its bytes and records the odd value in the block; a
//! block is used only while the counter still holds that value.
//!
//! Every guest store softvm makes (MOV, string instructions, atomics: the
//! RAM paths of `exec/mem.rs`) looks the counter up: an odd counter is
//! bumped to the next (even) value, which invalidates every block of the
//! page in every vCPU, and later stores to the page cost one load again.
//! The storing vCPU also ends its current block at once, so a store into
//! the very next instruction is seen (self-modifying code); other vCPUs
//! check the counter at each block entry (cross-modifying code).
//!
//! One race remains that the counters alone cannot close: a store on
//! another vCPU that loads the counter while it is still even, racing with
//! this vCPU marking the page and reading its bytes (each side's load may
//! pass its own earlier store). x86 asks the executing processor to run a
//! serializing instruction after the writer's signal before it executes
//! modified code (SDM vol. 3, 9.1.3), so a vCPU remembers the pages it
//! marked itself and, at the next serializing instruction, moves their
//! counters on (odd -> odd + 2) so those blocks are decoded again.
//!
//! Writes that do not go through the CPU are caught by generation checks at
//! the start of each batch: any [`GuestMemory::write_phys`] by the VMM
//! (loaders, harnesses rewriting code between runs) and any memslot change
//! drop the whole per-vCPU cache.
//!
//! Code at guest-physical addresses of 1 TiB and above is never cached.

mod predict;
mod run;

use super::decoded::Decoded;
use super::fast::FastOp;
use super::Exec;
use crate::cpu::state::SegReg;
use crate::cpu::Mode;
use iced_x86::{Code, Decoder, DecoderError, FlowControl, Instruction, Mnemonic, OpKind};
pub use run::run_batch;
use softmmu::{AccessKind, GuestMemory, Translation, PAGE_SIZE};
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed};
use std::sync::{Arc, Mutex, OnceLock, Weak};

/// Longest block, in instructions.
pub const MAX_BLOCK_INSNS: usize = 48;
/// Entries of the per-vCPU block table (a power of two).
const MAP_ENTRIES: usize = 8192;
/// Decoded instructions kept per vCPU before the cache is emptied.
const ARENA_INSNS: usize = 1 << 16;
/// Pages a vCPU may have marked since its last serializing instruction
/// before it moves them all on anyway.
const MAX_SUSPECTS: usize = 64;

const CHUNK_BITS: u32 = 16;
const CHUNK_PAGES: usize = 1 << CHUNK_BITS;
/// Chunks of page counters: gfns below 2^28 (gpa below 1 TiB).
const CHUNKS: usize = 1 << 12;

/// Per-page write versions, shared by the vCPUs of one VM (see the module
/// docs). Chunks of 64 Ki counters are allocated when a page in them first
/// holds cached code.
pub struct CodePages {
    /// The counters of the first chunk (guest RAM below 256 MiB, where
    /// nearly all code is), allocated up front so that the check every
    /// store makes is a bounds test and a load.
    first: Box<Chunk>,
    /// The other chunks (index 0 unused).
    chunks: Box<[OnceLock<Box<Chunk>>]>,
}

/// The counters of 64 Ki pages (an array type, so that indexing it with a
/// masked page number needs no bounds check).
type Chunk = [AtomicU64; CHUNK_PAGES];

/// One chunk of zeroed counters.
fn new_chunk() -> Box<Chunk> {
    boxed_array((0..CHUNK_PAGES).map(|_| AtomicU64::new(0)).collect())
}

/// An empty block table, built on the heap (not on the stack first).
fn new_map() -> Box<[Entry; MAP_ENTRIES]> {
    boxed_array(vec![Entry::default(); MAP_ENTRIES].into_boxed_slice())
}

/// `v` as an array of the length it was built with.
fn boxed_array<T, const N: usize>(v: Box<[T]>) -> Box<[T; N]> {
    match v.try_into() {
        Ok(a) => a,
        Err(_) => unreachable!("built with {N} elements"),
    }
}

impl Default for CodePages {
    fn default() -> Self {
        CodePages {
            first: new_chunk(),
            chunks: (0..CHUNKS).map(|_| OnceLock::new()).collect(),
        }
    }
}

impl CodePages {
    /// The counters of the VM whose memory is `mem` (one set per
    /// `GuestMemory`, found through a process-wide registry so that every
    /// vCPU of a VM shares it without the VM passing it around).
    pub fn for_memory(mem: &Arc<GuestMemory>) -> Arc<CodePages> {
        type Registry = Vec<(Weak<GuestMemory>, Arc<CodePages>)>;
        static REGISTRY: Mutex<Registry> = Mutex::new(Vec::new());
        let mut reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
        reg.retain(|(w, _)| w.strong_count() > 0);
        if let Some((_, p)) = reg
            .iter()
            .find(|(w, _)| std::ptr::eq(w.as_ptr(), Arc::as_ptr(mem)))
        {
            return p.clone();
        }
        let p = Arc::new(CodePages::default());
        reg.push((Arc::downgrade(mem), p.clone()));
        p
    }

    /// Counters for an `Exec` outside any VM's run loop (single-instruction
    /// harnesses), where nothing is cached.
    pub fn detached() -> &'static CodePages {
        static DETACHED: OnceLock<CodePages> = OnceLock::new();
        DETACHED.get_or_init(CodePages::default)
    }

    #[inline]
    fn cell(&self, gfn: u64) -> Option<&AtomicU64> {
        if gfn < CHUNK_PAGES as u64 {
            return Some(&self.first[gfn as usize]);
        }
        let chunk = self.chunks.get((gfn >> CHUNK_BITS) as usize)?.get()?;
        Some(&chunk[gfn as usize & (CHUNK_PAGES - 1)])
    }

    /// A store hit page `gfn`: if the page may hold cached code, invalidate
    /// it everywhere and say so.
    #[inline]
    pub fn note_write(&self, gfn: u64) -> bool {
        match self.cell(gfn) {
            Some(v) => {
                let cur = v.load(Relaxed);
                if cur & 1 == 0 {
                    return false;
                }
                Self::invalidate(v, cur);
                true
            }
            None => false,
        }
    }

    #[cold]
    fn invalidate(v: &AtomicU64, cur: u64) {
        // A failed exchange means someone else moved the counter: the
        // blocks of `cur` are invalid either way.
        let _ = v.compare_exchange(cur, cur + 1, AcqRel, Relaxed);
    }

    /// Mark page `gfn` as holding cached code; returns the (odd) version to
    /// record and whether this call did the marking. `None` above 1 TiB.
    fn mark(&self, gfn: u64) -> Option<(u64, bool)> {
        let chunk = match gfn >> CHUNK_BITS {
            0 => &self.first,
            c => self.chunks.get(c as usize)?.get_or_init(new_chunk),
        };
        let v = &chunk[gfn as usize & (CHUNK_PAGES - 1)];
        let mut cur = v.load(Acquire);
        loop {
            if cur & 1 == 1 {
                return Some((cur, false));
            }
            match v.compare_exchange(cur, cur + 1, AcqRel, Acquire) {
                Ok(_) => return Some((cur + 1, true)),
                Err(c) => cur = c,
            }
        }
    }

    /// Invalidate the blocks of a marked page, keeping it marked.
    fn bump(&self, gfn: u64) {
        if let Some(v) = self.cell(gfn) {
            let cur = v.load(Acquire);
            if cur & 1 == 1 {
                let _ = v.compare_exchange(cur, cur + 2, AcqRel, Relaxed);
            }
        }
    }
}

/// Block-ending instruction (branch, system instruction, I/O).
const K_ENDS: u8 = 1;
/// Ends the block and may change how code is fetched or translated
/// (paging, mode, CPL, segments), so the next block is translated afresh.
const K_SYSTEM: u8 = 2;
/// Serializing (CPUID, IRET, privileged instructions).
const K_SERIALIZING: u8 = 4;

/// A slot of the block table.
#[derive(Clone, Copy, Default)]
struct Entry {
    /// [`key`] of the block's gpa and code size; 0: empty.
    key: u64,
    hit: Hit,
    /// Offset of the last byte of the block (CS limit check outside 64-bit
    /// mode).
    last_byte: u64,
}

/// What the block loop needs of a cached block.
#[derive(Clone, Copy, Default)]
pub(super) struct Hit {
    pub rip: u64,
    /// The page counter's value when the block was decoded.
    pub version: u64,
    /// Its instructions: `insns[start..start + len]`.
    pub start: u32,
    pub len: u32,
}

/// A block's gpa and code size in one word, so that a lookup compares two
/// words (this and RIP). Never 0: code above 1 TiB is not cached.
#[inline(always)]
fn key(gpa: u64, bitness: u32) -> u64 {
    gpa | u64::from(bitness) << 48
}

/// Where the previous block ran, so a near branch that stays in its page
/// needs no new translation.
#[derive(Clone, Copy)]
struct Last {
    la_page: u64,
    gpa_page: u64,
    bitness: u32,
}

/// Counters of the cache, for benchmarks and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Blocks entered from the cache.
    pub hits: u64,
    /// Blocks decoded.
    pub builds: u64,
    /// Instructions run through the uncached path.
    pub uncached: u64,
    /// Whole-cache flushes (arena full, memslot change, VMM write).
    pub flushes: u64,
}

/// A vCPU's block cache (the shared page counters are in [`CodeCache`]).
pub struct Blocks {
    map: Box<[Entry; MAP_ENTRIES]>,
    insns: Vec<Decoded>,
    generation: u64,
    phys_writes: u64,
    suspects: Vec<u64>,
    /// The code translation of the last block looked up, which the next
    /// lookup reuses when its block starts in the same page: paging, CPL
    /// and CS change only in instructions that end the batch, and it is
    /// dropped at the start of each batch, after an instruction run
    /// uncached, and after a fault.
    cur: Option<Last>,
    /// `cur`'s linear page when its code is 64-bit, else 1 (no page
    /// address): what the inline lookup compares RIP's page with.
    near64: u64,
    /// `cur`'s guest-physical page (0 without `cur`).
    near_gpa: u64,
    enabled: bool,
    /// Where the block loop's fast forms leave a fault (a field, not a
    /// local: kept in memory, it stays out of the loop's registers).
    fault: Option<super::Fault>,
    pub stats: CacheStats,
}

/// A vCPU's decoded-code state: its blocks and the VM's page counters.
pub struct CodeCache {
    pub pages: Arc<CodePages>,
    pub blocks: Blocks,
}

impl CodeCache {
    /// A cache for a vCPU of the VM whose memory is `mem`.
    pub fn new(mem: &Arc<GuestMemory>) -> CodeCache {
        CodeCache {
            pages: CodePages::for_memory(mem),
            blocks: Blocks::new(mem),
        }
    }
}

impl Blocks {
    fn new(mem: &GuestMemory) -> Blocks {
        Blocks {
            map: new_map(),
            insns: Vec::new(),
            generation: mem.generation(),
            phys_writes: mem.phys_write_count(),
            suspects: Vec::new(),
            cur: None,
            near64: 1,
            near_gpa: 0,
            enabled: true,
            fault: None,
            stats: CacheStats::default(),
        }
    }

    /// Whether the cache is on.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Turn the cache off (every instruction decoded on each execution and
    /// run by its family handler, as a reference for tests) or back on.
    pub fn set_enabled(&mut self, on: bool) {
        self.enabled = on;
        self.flush();
    }

    /// Drop every block.
    pub fn flush(&mut self) {
        if !self.insns.is_empty() {
            self.map.fill(Entry::default());
            self.insns.clear();
            self.stats.flushes += 1;
        }
        self.forget_page();
    }

    /// Drop the code translation `cur` (batch start, after an uncached
    /// instruction or a fault).
    fn forget_page(&mut self) {
        self.set_page(None);
    }

    fn set_page(&mut self, cur: Option<Last>) {
        self.cur = cur;
        self.near64 = match cur {
            Some(l) if l.bitness == 64 => l.la_page,
            _ => 1,
        };
        self.near_gpa = cur.map_or(0, |l| l.gpa_page);
    }

    /// Drop everything if the memslots changed or the VMM wrote guest
    /// memory since the last batch.
    fn check_memory(&mut self, mem: &GuestMemory) {
        let g = mem.generation();
        let w = mem.phys_write_count();
        if g != self.generation || w != self.phys_writes {
            self.generation = g;
            self.phys_writes = w;
            self.flush();
        }
    }

    /// A serializing instruction ran: pages this vCPU marked since the last
    /// one are decoded again (see the module docs).
    fn serialize(&mut self, pages: &CodePages) {
        for gfn in self.suspects.drain(..) {
            pages.bump(gfn);
        }
    }

    #[inline]
    fn index(gpa: u64) -> usize {
        ((gpa ^ (gpa >> 13)) as usize) & (MAP_ENTRIES - 1)
    }

    /// The block at CS:RIP, decoding it if needed. `None`: run one
    /// instruction through [`step`] (faults, MMIO, page-crossing or
    /// unimplemented instructions, CS limit).
    ///
    /// `last` is the page counter of the block this batch looked up last
    /// (`None` after an instruction run uncached): the counter of `cur`'s
    /// page, since every lookup that returns a block either finds it in
    /// `cur`'s page or makes its page `cur`.
    #[inline]
    fn lookup<'p>(
        &mut self,
        x: &mut Exec<'p>,
        last: Option<&'p AtomicU64>,
    ) -> Option<(Hit, &'p AtomicU64)> {
        // The common case inline: 64-bit code, in the page of the last
        // block, already cached.
        let rip = x.cpu.rip;
        if let Some(counter) = last.filter(|_| self.near64 == rip & !(PAGE_SIZE - 1)) {
            // `cur` holds the code size of the mode the batch runs in: the
            // mode changes only in instructions that end the batch.
            debug_assert_eq!(x.cpu.mode(), Mode::Long64);
            let gpa = self.near_gpa | (rip & (PAGE_SIZE - 1));
            debug_assert!(x
                .code
                .cell(gpa >> 12)
                .is_some_and(|c| std::ptr::eq(c, counter)));
            let e = &self.map[Self::index(gpa)];
            if e.key == key(gpa, 64) && e.hit.rip == rip && counter.load(Acquire) == e.hit.version {
                self.stats.hits += 1;
                return Some((e.hit, counter));
            }
        }
        self.lookup_slow(x)
    }

    /// The cached block for (`gpa`, `rip`, `bitness`) if its page has not
    /// changed since it was decoded and (outside 64-bit mode) it ends within
    /// `cs_limit`; with the page's counter.
    #[inline]
    fn cached<'p>(
        &mut self,
        pages: &'p CodePages,
        gpa: u64,
        rip: u64,
        bitness: u32,
        cs_limit: Option<u32>,
    ) -> Option<(Hit, &'p AtomicU64)> {
        let e = &self.map[Self::index(gpa)];
        let fits = cs_limit.is_none_or(|l| e.last_byte <= u64::from(l));
        if e.key != key(gpa, bitness) || e.hit.rip != rip || !fits {
            return None;
        }
        // A cached block's page has a counter: it was marked.
        let counter = pages.cell(gpa >> 12)?;
        if counter.load(Acquire) != e.hit.version {
            return None;
        }
        self.stats.hits += 1;
        Some((e.hit, counter))
    }

    /// [`Blocks::lookup`] in full: any mode, a new code page, or a block
    /// to decode.
    #[inline(never)]
    fn lookup_slow<'p>(&mut self, x: &mut Exec<'p>) -> Option<(Hit, &'p AtomicU64)> {
        let mode = x.cpu.mode();
        let bitness = mode.bitness();
        let rip = x.cpu.rip;
        let long = mode == Mode::Long64;
        let la = if long {
            rip
        } else {
            let cs = x.cpu.sreg(SegReg::Cs);
            if rip > u64::from(cs.limit) {
                return None;
            }
            cs.base.wrapping_add(rip) & 0xffff_ffff
        };
        let mut hva = None;
        let gpa = match self.cur {
            Some(l) if l.la_page == la & !(PAGE_SIZE - 1) && l.bitness == bitness => {
                l.gpa_page | (la & (PAGE_SIZE - 1))
            }
            _ => {
                let gpa = match x.mmu.hot_fetch_gpa(la) {
                    Some(gpa) => gpa,
                    None => match x.translate_la(la & !(PAGE_SIZE - 1), AccessKind::Fetch) {
                        Ok(Translation::Ram { gpa, hva: h }) => {
                            hva = Some(h);
                            gpa.raw() | (la & (PAGE_SIZE - 1))
                        }
                        _ => return None,
                    },
                };
                self.set_page(Some(Last {
                    la_page: la & !(PAGE_SIZE - 1),
                    gpa_page: gpa & !(PAGE_SIZE - 1),
                    bitness,
                }));
                gpa
            }
        };
        let pages: &'p CodePages = x.code;
        let cs_limit = (!long).then(|| x.cpu.sreg(SegReg::Cs).limit);
        if let Some(hit) = self.cached(pages, gpa, rip, bitness, cs_limit) {
            return Some(hit);
        }
        let idx = Self::index(gpa);
        let hva = match hva {
            Some(h) => h,
            None => match x.translate_la(la & !(PAGE_SIZE - 1), AccessKind::Fetch) {
                Ok(Translation::Ram { hva, .. }) => hva,
                _ => return None,
            },
        };
        let e = self.build(x, idx, gpa, rip, bitness, long, hva)?;
        Some((e, pages.cell(gpa >> 12)?))
    }

    #[allow(clippy::too_many_arguments)]
    fn build(
        &mut self,
        x: &mut Exec,
        idx: usize,
        gpa: u64,
        rip: u64,
        bitness: u32,
        long: bool,
        hva: softmmu::Hva,
    ) -> Option<Hit> {
        let gfn = gpa >> 12;
        // Mark first, then read: see the module docs.
        let (version, fresh) = x.code.mark(gfn)?;
        if fresh {
            if self.suspects.len() >= MAX_SUSPECTS {
                self.serialize(x.code);
            }
            self.suspects.push(gfn);
        }
        // The whole page: a followed JMP or CALL may go backwards in it.
        let off = (gpa & (PAGE_SIZE - 1)) as usize;
        let mut page = [0u8; PAGE_SIZE as usize];
        x.mmu.load_bytes(hva, &mut page);
        if self.insns.len() + MAX_BLOCK_INSNS > ARENA_INSNS {
            self.flush();
        }
        let start = self.insns.len();
        let ip_mask = if long {
            u64::MAX
        } else if bitness == 32 {
            0xffff_ffff
        } else {
            0xffff
        };
        let page_ip = rip.wrapping_sub(off as u64);
        let mut dec = Decoder::with_ip(bitness, &page, page_ip, x.sys.gate.decoder_options);
        dec.set_position(off).ok()?;
        dec.set_ip(rip);
        let mut ins = Instruction::default();
        let mut bytes = 0u64;
        // The length of one copy of a loop being unrolled.
        let mut copy = None;
        let mut stack = predict::StackTrack::new(long);
        let rsp = x.cpu.gpr[4];
        while self.insns.len() - start < MAX_BLOCK_INSNS {
            dec.decode_out(&mut ins);
            if dec.last_error() != DecoderError::None {
                break;
            }
            // No IP wrap-around inside a block (16/32-bit code).
            if ins.next_ip() & !ip_mask != 0 {
                break;
            }
            let kind = classify(&ins);
            // A direct JMP or CALL to this page continues the block at its
            // target (64-bit code: see `FastOp::follows`), and so does a Jcc
            // back to the block's start while another copy of the loop
            // fits: the block leaves the loop when the Jcc is not taken.
            // A RET continues at its predicted return address (see
            // `predict`) and leaves the block when it goes elsewhere.
            let op = super::fast::select(&ins);
            let len = self.insns.len() - start + 1;
            let unroll = op.is_some_and(FastOp::is_jcc64)
                && ins.near_branch_target() == rip
                && len + *copy.get_or_insert(len) <= MAX_BLOCK_INSNS;
            let target = if unroll || op.is_some_and(FastOp::follows) {
                Some(ins.near_branch_target())
            } else if op == Some(FastOp::Ret64) {
                stack.ret_target(|off| x.mmu.hot_load(rsp.wrapping_add(off as u64), 8))
            } else {
                None
            };
            let (next, kind) = match target {
                Some(t) if t.wrapping_sub(page_ip) < PAGE_SIZE => (t, kind & !K_ENDS),
                _ => (ins.next_ip() & ip_mask, kind),
            };
            let follow = kind & K_ENDS == 0 && next != ins.next_ip() & ip_mask;
            // The block loop looks at the kind only after forms that say
            // `fast::Ran::Branch`: a form that may say `Plain` and ends the
            // batch (none does today) runs as a family instruction instead.
            let fast =
                kind & !K_ENDS == 0 || !op.is_some_and(|op| op.is_plain() || op.is_branch64());
            let at = dec.position() - ins.len();
            let raw = &page[at..at + ins.len()];
            let Some(d) = Decoded::new(&ins, next, kind, fast, &x.sys.gate, raw) else {
                break;
            };
            bytes += ins.len() as u64;
            self.insns.push(d);
            if kind & K_ENDS != 0 {
                break;
            }
            stack.after(&ins);
            if follow {
                let at = next.wrapping_sub(page_ip) as usize;
                dec.set_position(at).ok()?;
                dec.set_ip(next);
            }
        }
        let len = self.insns.len() - start;
        if len == 0 {
            return None;
        }
        self.stats.builds += 1;
        let hit = Hit {
            rip,
            version,
            start: start as u32,
            len: len as u32,
        };
        self.map[idx] = Entry {
            key: key(gpa, bitness),
            hit,
            last_byte: rip + bytes - 1,
        };
        Some(hit)
    }
}

/// What ends a block after `ins`, and whether it serializes.
pub(super) fn classify(ins: &Instruction) -> u8 {
    let code = ins.code();
    let m = ins.mnemonic();
    let serializing = code.is_privileged()
        || matches!(
            m,
            Mnemonic::Cpuid
                | Mnemonic::Iret
                | Mnemonic::Iretd
                | Mnemonic::Iretq
                | Mnemonic::Serialize
        );
    let near_branch = match ins.flow_control() {
        FlowControl::ConditionalBranch | FlowControl::Return => m != Mnemonic::Retf,
        FlowControl::UnconditionalBranch
        | FlowControl::IndirectBranch
        | FlowControl::Call
        | FlowControl::IndirectCall => {
            !(ins.is_jmp_far()
                || ins.is_jmp_far_indirect()
                || ins.is_call_far()
                || ins.is_call_far_indirect())
        }
        _ => false,
    };
    let writes_sreg = matches!(m, Mnemonic::Mov | Mnemonic::Pop)
        && ins.op0_kind() == OpKind::Register
        && ins.op0_register().is_segment_register();
    let system = serializing
        || writes_sreg
        || (ins.flow_control() != FlowControl::Next && !near_branch)
        || matches!(
            m,
            Mnemonic::Popf
                | Mnemonic::Popfd
                | Mnemonic::Popfq
                | Mnemonic::Sti
                | Mnemonic::Cli
                | Mnemonic::Stac
                | Mnemonic::Clac
                | Mnemonic::Lss
                | Mnemonic::Lds
                | Mnemonic::Les
                | Mnemonic::Lfs
                | Mnemonic::Lgs
                | Mnemonic::In
                | Mnemonic::Out
                | Mnemonic::Insb
                | Mnemonic::Insw
                | Mnemonic::Insd
                | Mnemonic::Outsb
                | Mnemonic::Outsw
                | Mnemonic::Outsd
                | Mnemonic::Syscall
                | Mnemonic::Sysenter
                | Mnemonic::Wrfsbase
                | Mnemonic::Wrgsbase
                | Mnemonic::Xrstor
                | Mnemonic::Xrstor64
                | Mnemonic::Fxrstor
                | Mnemonic::Fxrstor64
        )
        || code == Code::INVALID;
    let mut k = 0;
    // A conditional branch is a side exit: when taken, the block loop
    // sees RIP leave the block and stops; when not, the block goes on.
    let conditional = ins.flow_control() == FlowControl::ConditionalBranch;
    if system || (near_branch && !conditional) {
        k |= K_ENDS;
    }
    if system {
        k |= K_SYSTEM;
    }
    if serializing {
        k |= K_SERIALIZING;
    }
    k
}
