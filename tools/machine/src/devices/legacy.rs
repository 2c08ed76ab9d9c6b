//! The legacy chips test kernels touch: both 8259 PICs (kept masked: they
//! accept initialisation words and report no interrupts), the CMOS/RTC
//! index and data ports (a fixed date) and the POST port 0x80. Port 0x61
//! belongs to the PIT model (`pit.rs`).

#[derive(Default)]
pub struct Legacy {
    pic_mask: [u8; 2],
    cmos_index: u8,
}

impl Legacy {
    pub fn read(&mut self, port: u16, _size: usize) -> u32 {
        match port {
            0x21 => u32::from(self.pic_mask[0]),
            0xa1 => u32::from(self.pic_mask[1]),
            0x70 => u32::from(self.cmos_index),
            0x71 => u32::from(self.cmos(self.cmos_index & 0x7f)),
            _ => 0xffff_ffff,
        }
    }

    pub fn write(&mut self, port: u16, v: u32, _size: usize) {
        match port {
            0x21 => self.pic_mask[0] = v as u8,
            0xa1 => self.pic_mask[1] = v as u8,
            0x70 => self.cmos_index = v as u8,
            _ => {}
        }
    }

    /// CMOS registers: a fixed time (2000-01-01 00:00:00, BCD) and status.
    fn cmos(&self, idx: u8) -> u8 {
        match idx {
            0x07 | 0x08 => 1,
            0x09 => 0,
            0x32 => 0x20,
            0x0a => 0x26,
            0x0b => 0x02,
            0x0d => 0x80,
            _ => 0,
        }
    }
}
