//! Multiboot v1: the header in the image, its a.out-kludge address fields,
//! and the multiboot information structure built in guest RAM.

mod header;
mod info;

pub use header::BOOTLOADER_MAGIC;
pub(crate) use header::{check_flags, scan, MultibootHeader, Scan};

use header::kludge_segment;
use info::{build_info, info_layout, memory_map, place_modules};

use crate::elf::ElfHeader;
use crate::layout::{FOUR_GIB, GDT_ADDR, GDT_SIZE, MULTIBOOT_INFO_ADDR, MULTIBOOT_STACK_TOP};
use crate::plan::{check_reserved, check_segments, image_end, translate_entry};
use crate::plan::{Plan, Reserved};
use crate::{cpu, BootState, ImageKind, LoadError, LoadOptions};

/// Checks the strings that become C strings.
fn check_strings(opts: &LoadOptions) -> Result<(), LoadError> {
    if opts.cmdline.contains('\0') {
        return Err(LoadError::NulInString {
            what: "command line".into(),
        });
    }
    for (i, m) in opts.modules.iter().enumerate() {
        if m.name.contains('\0') {
            return Err(LoadError::NulInString {
                what: format!("name of module {i}"),
            });
        }
    }
    Ok(())
}

/// Validates a multiboot image against the options and plans its load.
pub(crate) fn prepare<'a>(
    image: &'a [u8],
    header: &MultibootHeader,
    elf: Option<&ElfHeader>,
    opts: &'a LoadOptions,
) -> Result<(BootState, Plan<'a>), LoadError> {
    check_flags(header)?;
    check_strings(opts)?;
    let (segs, entry) = match (&header.addr, elf) {
        (Some(a), _) => {
            let (seg, entry) = kludge_segment(image, header.offset, a)?;
            (vec![seg], entry)
        }
        (None, Some(elf)) => {
            let segs = elf.segments(image)?;
            (segs, elf.header.e_entry)
        }
        (None, None) => return Err(LoadError::NotElfNoAddressFields),
    };
    check_segments(&segs, opts.mem_size, Some(FOUR_GIB))?;
    let entry = if header.addr.is_some() {
        // The a.out-kludge entry is physical already.
        let inside = segs
            .iter()
            .any(|s| entry >= s.paddr && entry - s.paddr < s.memsz);
        if !inside {
            return Err(LoadError::EntryOutsideSegments { entry });
        }
        entry
    } else {
        translate_entry(&segs, entry)?
    };

    let map = memory_map(opts.mem_size);
    let layout = info_layout(opts, map.len() as u64)?;
    let reserved = [
        Reserved {
            start: GDT_ADDR,
            end: GDT_ADDR + GDT_SIZE,
            what: "GDT",
        },
        Reserved {
            start: MULTIBOOT_INFO_ADDR,
            end: layout.end,
            what: "multiboot information",
        },
    ];
    check_reserved(&segs, &reserved)?;
    let modules = place_modules(image_end(&segs), opts)?;
    let info = build_info(opts, &layout, &map, &modules);

    let mut plan = Plan::default();
    for s in &segs {
        plan.segment(s);
    }
    plan.bytes(GDT_ADDR, cpu::gdt_bytes(false));
    plan.bytes(MULTIBOOT_INFO_ADDR, info);
    for (&(start, _), m) in modules.iter().zip(&opts.modules) {
        plan.bytes(start, m.data.as_slice());
    }
    let (regs, sregs) = cpu::multiboot_state(entry, MULTIBOOT_INFO_ADDR, MULTIBOOT_STACK_TOP);
    let state = BootState {
        kind: ImageKind::Multiboot32,
        regs,
        sregs,
        entry,
    };
    Ok((state, plan))
}
