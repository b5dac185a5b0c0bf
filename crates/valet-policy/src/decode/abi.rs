//! A small bounds-checked reader of ABI-encoded data (Solidity's `abi.encode` layout), over
//! raw bytes, without allocation.
//!
//! Every read returns `None` instead of panicking when the data is short, an offset or length
//! points outside the data, or a value is out of range for its type (an address word with
//! non-zero high bytes, a `bool` that is neither 0 nor 1, a `uint160` above 2^160 - 1): the
//! same inputs Solidity's ABI decoder rejects.

use alloy_primitives::{Address, Bytes, U256};
use std::ops::Range;

/// The four-byte selector at the start of `data`, if any.
pub(crate) fn selector(data: &[u8]) -> Option<[u8; 4]> {
    match data {
        [a, b, c, d, ..] => Some([*a, *b, *c, *d]),
        _ => None,
    }
}

/// A zero-copy slice of `data` over `range`, or `None` when the range does not fit.
pub(crate) fn slice(data: &Bytes, range: Range<usize>) -> Option<Bytes> {
    (range.start <= range.end && range.end <= data.len()).then(|| data.slice(range))
}

/// One ABI-encoded tuple: its head starts at `base` in `buf`, and its offsets are relative
/// to `base`. `buf` is the whole buffer, so ranges returned by [`Tuple::bytes`] index it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tuple<'a> {
    buf: &'a [u8],
    base: usize,
}

impl<'a> Tuple<'a> {
    /// The tuple whose head starts at `base` in `buf` (4 for a call's arguments, 0 for a plain
    /// `abi.encode`).
    pub(crate) fn new(buf: &'a [u8], base: usize) -> Self {
        Self { buf, base }
    }

    /// Head word `i`.
    pub(crate) fn word(&self, i: usize) -> Option<&'a [u8; 32]> {
        let start = self.base.checked_add(i.checked_mul(32)?)?;
        self.buf.get(start..start.checked_add(32)?)?.try_into().ok()
    }

    /// Head word `i` as a `uint256`.
    pub(crate) fn uint(&self, i: usize) -> Option<U256> {
        self.word(i).map(|w| U256::from_be_bytes(*w))
    }

    /// Head word `i` as an unsigned integer of `bits` bits (a multiple of 8): the high bytes
    /// must be zero.
    fn uint_bits(&self, i: usize, bits: usize) -> Option<&'a [u8; 32]> {
        let w = self.word(i)?;
        let high = 32 - bits / 8;
        w[..high].iter().all(|b| *b == 0).then_some(w)
    }

    /// Head word `i` as a `uint160`.
    pub(crate) fn uint160(&self, i: usize) -> Option<U256> {
        self.uint_bits(i, 160).map(|w| U256::from_be_bytes(*w))
    }

    /// Head word `i` as a `uint48` (or any narrower type up to 64 bits, given `bits`).
    pub(crate) fn small(&self, i: usize, bits: usize) -> Option<u64> {
        let w = self.uint_bits(i, bits.min(64))?;
        let mut b = [0u8; 8];
        b.copy_from_slice(&w[24..]);
        Some(u64::from_be_bytes(b))
    }

    /// Head word `i` as an `address`.
    pub(crate) fn address(&self, i: usize) -> Option<Address> {
        self.uint_bits(i, 160)
            .map(|w| Address::from_slice(&w[12..]))
    }

    /// Head word `i` as a `bool`.
    pub(crate) fn boolean(&self, i: usize) -> Option<bool> {
        match self.small(i, 8)? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }

    /// Head word `i` read as an offset or length that fits the buffer (at most its length).
    fn size(&self, i: usize) -> Option<usize> {
        let v = usize::try_from(self.small(i, 64)?).ok()?;
        (v <= self.buf.len()).then_some(v)
    }

    /// The static sub-tuple inlined from head word `i` on (a struct of static fields).
    pub(crate) fn inline(&self, i: usize) -> Option<Tuple<'a>> {
        let base = self.base.checked_add(i.checked_mul(32)?)?;
        Some(Tuple {
            buf: self.buf,
            base,
        })
    }

    /// The dynamic value whose offset is head word `i`: a dynamic struct, or the length word
    /// of `bytes`/an array.
    pub(crate) fn tail(&self, i: usize) -> Option<Tuple<'a>> {
        let base = self.base.checked_add(self.size(i)?)?;
        (base <= self.buf.len()).then_some(Tuple {
            buf: self.buf,
            base,
        })
    }

    /// The `bytes` (or `string`) whose offset is head word `i`: its range in the buffer.
    pub(crate) fn bytes(&self, i: usize) -> Option<Range<usize>> {
        let at = self.tail(i)?;
        let len = at.size(0)?;
        let start = at.base.checked_add(32)?;
        let end = start.checked_add(len)?;
        (end <= self.buf.len()).then_some(start..end)
    }

    /// The `bytes` whose offset is head word `i`, as a slice.
    pub(crate) fn bytes_slice(&self, i: usize) -> Option<&'a [u8]> {
        self.bytes(i).and_then(|r| self.buf.get(r))
    }

    /// The array whose offset is head word `i`, with elements of `stride` head words each:
    /// `stride` is the size of a static element, or 1 for dynamic elements (their offsets).
    /// A length that the remaining data cannot hold is rejected.
    pub(crate) fn array(&self, i: usize, stride: usize) -> Option<Array<'a>> {
        let at = self.tail(i)?;
        let len = at.size(0)?;
        let elems = at.inline(1)?;
        let need = len.checked_mul(stride.max(1))?.checked_mul(32)?;
        let end = elems.base.checked_add(need)?;
        (end <= self.buf.len()).then_some(Array {
            elems,
            len,
            stride: stride.max(1),
        })
    }
}

/// An ABI-encoded array, checked to fit the buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Array<'a> {
    /// The elements' head: offsets of dynamic elements are relative to its start.
    elems: Tuple<'a>,
    len: usize,
    stride: usize,
}

impl<'a> Array<'a> {
    /// How many elements.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Element `k` of an array of static tuples (or of single words, read with `word(0)`).
    pub(crate) fn item(&self, k: usize) -> Option<Tuple<'a>> {
        if k >= self.len {
            return None;
        }
        self.elems.inline(k.checked_mul(self.stride)?)
    }

    /// Element `k` of an array of dynamic tuples.
    pub(crate) fn dyn_item(&self, k: usize) -> Option<Tuple<'a>> {
        if k >= self.len {
            return None;
        }
        self.elems.tail(k)
    }

    /// Element `k` of a `bytes[]`: its range in the buffer.
    pub(crate) fn bytes(&self, k: usize) -> Option<Range<usize>> {
        if k >= self.len {
            return None;
        }
        self.elems.bytes(k)
    }

    /// Element `k` of an `address[]`.
    pub(crate) fn address(&self, k: usize) -> Option<Address> {
        if k >= self.len {
            return None;
        }
        self.elems.address(k)
    }

    /// Element `k` of a `uint256[]`.
    pub(crate) fn uint(&self, k: usize) -> Option<U256> {
        if k >= self.len {
            return None;
        }
        self.elems.uint(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::{address, hex};

    // cast abi-encode "f(address,bool,uint48,bytes,address[])" 0x1111111111111111111111111111111111111111 true 7 0xdeadbeef "[0x2222222222222222222222222222222222222222,0x3333333333333333333333333333333333333333]"
    const MIXED: &str = "0x00000000000000000000000011111111111111111111111111111111111111110000000000000000000000000000000000000000000000000000000000000001000000000000000000000000000000000000000000000000000000000000000700000000000000000000000000000000000000000000000000000000000000a000000000000000000000000000000000000000000000000000000000000000e00000000000000000000000000000000000000000000000000000000000000004deadbeef00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000200000000000000000000000022222222222222222222222222222222222222220000000000000000000000003333333333333333333333333333333333333333";

    #[test]
    fn reads_each_type() {
        let buf = hex::decode(MIXED).unwrap();
        let t = Tuple::new(&buf, 0);
        assert_eq!(
            t.address(0),
            Some(address!("1111111111111111111111111111111111111111"))
        );
        assert_eq!(t.boolean(1), Some(true));
        assert_eq!(t.small(2, 48), Some(7));
        assert_eq!(t.bytes_slice(3), Some(&[0xde, 0xad, 0xbe, 0xef][..]));
        let path = t.array(4, 1).unwrap();
        assert_eq!(path.len(), 2);
        assert_eq!(
            path.address(1),
            Some(address!("3333333333333333333333333333333333333333"))
        );
        assert_eq!(path.address(2), None);
        assert!(t.word(9).is_some());
        assert_eq!(t.word(10), None);
    }

    #[test]
    fn rejects_out_of_range_values() {
        let mut buf = hex::decode(MIXED).unwrap();
        buf[0] = 1; // dirty address
        buf[32 + 31] = 2; // bool 2
        buf[64] = 1; // uint48 overflow
        let t = Tuple::new(&buf, 0);
        assert_eq!(t.address(0), None);
        assert_eq!(t.boolean(1), None);
        assert_eq!(t.small(2, 48), None);
        assert_eq!(t.uint160(0), None);
    }

    #[test]
    fn rejects_offsets_and_lengths_outside_the_data() {
        let mut buf = hex::decode(MIXED).unwrap();
        // bytes offset past the end
        buf[3 * 32 + 30] = 0xff;
        // address[] length of 3 where only 2 fit
        let len_at = 0xe0 + 31;
        buf[len_at] = 3;
        let t = Tuple::new(&buf, 0);
        assert_eq!(t.bytes(3), None);
        assert!(t.array(4, 1).is_none());
        // a huge length word
        buf[0xe0] = 0xff;
        assert!(Tuple::new(&buf, 0).array(4, 1).is_none());
    }
}
