//! A file's bytes in fixed-size blocks behind `Arc`s: an fsync shares the
//! blocks with the durable layer (a copy of pointers, not of bytes), and
//! the next write to a shared block copies only that block.

use std::sync::Arc;

/// Bytes per data block: small enough that copying one on the first write
/// after an fsync is cheap, large enough that a file's block list is short.
pub const BLOCK: usize = 16 * 1024;

/// A file's bytes: `size`, and blocks where `None` reads as zeros.
#[derive(Clone, Default, Debug)]
pub struct Data {
    pub(crate) size: u64,
    pub(crate) blocks: Vec<Option<Arc<Vec<u8>>>>,
}

impl Data {
    pub fn size(&self) -> u64 {
        self.size
    }

    fn block_count(size: u64) -> usize {
        size.div_ceil(BLOCK as u64) as usize
    }

    pub fn read(&self, offset: u64, len: usize) -> Vec<u8> {
        if offset >= self.size {
            return Vec::new();
        }
        let end = (offset + len as u64).min(self.size);
        let mut out = vec![0u8; (end - offset) as usize];
        let mut pos = offset;
        while pos < end {
            let idx = (pos / BLOCK as u64) as usize;
            let within = (pos % BLOCK as u64) as usize;
            let n = (BLOCK - within).min((end - pos) as usize);
            if let Some(Some(block)) = self.blocks.get(idx) {
                let at = (pos - offset) as usize;
                out[at..at + n].copy_from_slice(&block[within..within + n]);
            }
            pos += n as u64;
        }
        out
    }

    fn block_mut(&mut self, idx: usize) -> &mut Vec<u8> {
        if self.blocks.len() <= idx {
            self.blocks.resize(idx + 1, None);
        }
        let slot = &mut self.blocks[idx];
        Arc::make_mut(slot.get_or_insert_with(|| Arc::new(vec![0u8; BLOCK])))
    }

    pub fn write(&mut self, offset: u64, data: &[u8]) {
        let mut pos = offset;
        let mut rest = data;
        while !rest.is_empty() {
            let idx = (pos / BLOCK as u64) as usize;
            let within = (pos % BLOCK as u64) as usize;
            let n = (BLOCK - within).min(rest.len());
            self.block_mut(idx)[within..within + n].copy_from_slice(&rest[..n]);
            pos += n as u64;
            rest = &rest[n..];
        }
        self.size = self.size.max(offset + data.len() as u64);
    }

    /// Zeros `[from, to)` inside the current size, dropping whole blocks.
    pub(crate) fn zero(&mut self, from: u64, to: u64) {
        let to = to.min(self.size);
        let mut pos = from;
        while pos < to {
            let idx = (pos / BLOCK as u64) as usize;
            let within = (pos % BLOCK as u64) as usize;
            let n = (BLOCK - within).min((to - pos) as usize);
            if idx >= self.blocks.len() {
                break;
            }
            if n == BLOCK {
                self.blocks[idx] = None;
            } else if self.blocks[idx].is_some() {
                self.block_mut(idx)[within..within + n].fill(0);
            }
            pos += n as u64;
        }
    }

    pub fn set_size(&mut self, size: u64) {
        if size < self.size {
            // Bytes past the new end must read as zeros if the file grows
            // again, so clear the tail of the last kept block.
            let keep = Self::block_count(size);
            self.blocks.truncate(keep);
            let within = (size % BLOCK as u64) as usize;
            if within != 0 && keep > 0 && self.blocks[keep - 1].is_some() {
                self.block_mut(keep - 1)[within..].fill(0);
            }
        }
        self.size = size;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_blocks_read_back_across_boundaries_and_holes() {
        let mut d = Data::default();
        d.write(BLOCK as u64 - 3, b"abcdef");
        assert_eq!(d.size(), BLOCK as u64 + 3);
        assert_eq!(d.read(BLOCK as u64 - 3, 6), b"abcdef");
        assert_eq!(d.read(0, 4), vec![0; 4]);
        d.set_size(BLOCK as u64 - 1);
        d.set_size(BLOCK as u64 + 3);
        assert_eq!(d.read(BLOCK as u64 - 3, 6), b"ab\0\0\0\0");
        d.write(5 * BLOCK as u64, b"z");
        assert_eq!(d.read(3 * BLOCK as u64, 2), vec![0, 0]);
    }
}
