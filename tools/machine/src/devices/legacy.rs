//! The legacy chips test kernels touch that softvm does not model beyond
//! their registers: both 8259 PICs (kept masked: they accept
//! initialisation words, keep their mask registers and report no
//! interrupts). The CMOS/RTC is `rtc`, port 0x61 belongs to the PIT model
//! (`pit.rs`); anything else reads as all ones.

#[derive(Default)]
pub struct Legacy {
    pic_mask: [u8; 2],
}

impl Legacy {
    pub fn read(&mut self, port: u16, _size: usize) -> u32 {
        match port {
            0x21 => u32::from(self.pic_mask[0]),
            0xa1 => u32::from(self.pic_mask[1]),
            _ => 0xffff_ffff,
        }
    }

    pub fn write(&mut self, port: u16, v: u32, _size: usize) {
        match port {
            0x21 => self.pic_mask[0] = v as u8,
            0xa1 => self.pic_mask[1] = v as u8,
            _ => {}
        }
    }
}
