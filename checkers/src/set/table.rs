//! The set checker's element table: one [`Elem`] per distinct element, found by value.

use foldhash::HashMap as FastMap;

use history::Value;

use super::{Elem, NO_REF};

/// Elements by value. Small non-negative integers (the usual elements: 0, 1, 2, ...) index a
/// vector directly, which is several times cheaper than hashing when a read lists millions of
/// them; other integers get a map with small buckets, other values a general map.
#[derive(Default)]
pub(super) struct Table {
    /// `dense[i]`: the element for integer `i`, or [`NO_REF`].
    dense: Vec<u32>,
    ints: IntMap<u32>,
    others: FastMap<Value, u32>,
    elems: Vec<Elem>,
}

/// The dense vector grows to cover an integer only while it stays within this many slots per
/// element (plus a floor), so that a few huge integers cannot make it huge.
const DENSE_SLOTS_PER_ELEM: usize = 4;
const DENSE_FLOOR: usize = 1 << 16;

/// A map keyed by integers that are often consecutive (elements, ids from a counter).
pub(crate) type IntMap<V> =
    std::collections::HashMap<i64, V, std::hash::BuildHasherDefault<LocalHasher>>;

/// Hashes an integer to itself in the low bits (consecutive elements land in consecutive
/// buckets, so reads that list them in order walk memory in order) and mixes the top bits,
/// which the table uses as tags.
#[derive(Default)]
pub(crate) struct LocalHasher(u64);

impl std::hash::Hasher for LocalHasher {
    fn finish(&self) -> u64 {
        let mixed = self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (self.0 & 0x01FF_FFFF_FFFF_FFFF) | (mixed & 0xFE00_0000_0000_0000)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_i64(&mut self, i: i64) {
        self.0 = i as u64;
    }
}

impl Table {
    pub(super) fn get_or_insert(&mut self, v: &Value) -> &mut Elem {
        let next = self.elems.len() as u32;
        let i = match v {
            Value::Int(i) => match self.dense_slot(*i) {
                Some(slot) => {
                    if *slot == NO_REF {
                        *slot = next;
                    }
                    *slot
                }
                None => *self.ints.entry(*i).or_insert(next),
            },
            other => match self.others.get(other) {
                Some(&i) => i,
                None => {
                    self.others.insert(other.clone(), next);
                    next
                }
            },
        };
        if i == next {
            self.elems.push(Elem::new());
        }
        &mut self.elems[i as usize]
    }

    /// The dense slot of integer `i`, growing the vector when that stays within bounds.
    fn dense_slot(&mut self, i: i64) -> Option<&mut u32> {
        let i = usize::try_from(i).ok()?;
        if i >= self.dense.len() {
            let bound = (self.elems.len() * DENSE_SLOTS_PER_ELEM).max(DENSE_FLOOR);
            if i >= bound {
                return None;
            }
            let len = (i + 1).max(self.dense.len() * 2).min(bound);
            let old = self.dense.len();
            self.dense.resize(len, NO_REF);
            // Integers that went to the map before the vector reached them move over, so
            // that each integer has one place.
            if !self.ints.is_empty() {
                let moved: Vec<(i64, u32)> = self
                    .ints
                    .iter()
                    .filter(|(k, _)| (old as i64..len as i64).contains(k))
                    .map(|(&k, &e)| (k, e))
                    .collect();
                for (k, e) in moved {
                    self.ints.remove(&k);
                    self.dense[k as usize] = e;
                }
            }
        }
        Some(&mut self.dense[i])
    }

    /// Every element with its value: dense integers in ascending order, then the rest.
    pub(super) fn iter(&self) -> impl Iterator<Item = (Value, &Elem)> + '_ {
        let dense = self
            .dense
            .iter()
            .enumerate()
            .filter(|(_, e)| **e != NO_REF)
            .map(|(k, &e)| (Value::Int(k as i64), e));
        let ints = self.ints.iter().map(|(&k, &i)| (Value::Int(k), i));
        let others = self.others.iter().map(|(k, &i)| (k.clone(), i));
        dense
            .chain(ints)
            .chain(others)
            .map(|(k, i)| (k, &self.elems[i as usize]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Marks each element with its value, to check that a lookup finds the same element.
    fn touch(t: &mut Table, v: &Value) -> u64 {
        let e = t.get_or_insert(v);
        if e.add_invoke == super::super::NONE {
            e.add_invoke = match v {
                Value::Int(i) => *i as u64,
                _ => 7,
            };
        }
        e.add_invoke
    }

    #[test]
    fn each_value_has_one_element_whichever_map_holds_it() {
        let mut t = Table::default();
        // Big integers first go to the map; once enough elements exist the vector grows over
        // them, and they must move rather than get a second element.
        let big = DENSE_FLOOR as i64 + 10;
        for v in [big, -3, i64::MAX, 5] {
            assert_eq!(touch(&mut t, &Value::Int(v)), v as u64);
        }
        for i in 0..(DENSE_FLOOR as i64 / 2) {
            touch(&mut t, &Value::Int(i));
        }
        let n = t.elems.len();
        for v in [big - 1, big, -3, i64::MAX, 5, 0] {
            assert_eq!(touch(&mut t, &Value::Int(v)), v as u64);
        }
        assert!(
            t.dense.len() > big as usize,
            "the vector should have grown past {big}"
        );
        assert!(!t.ints.contains_key(&big));
        touch(&mut t, &Value::str("x"));
        touch(&mut t, &Value::str("x"));
        assert_eq!(t.elems.len(), n + 2);
        let values: Vec<Value> = t.iter().map(|(v, _)| v).collect();
        assert_eq!(values.len(), t.elems.len());
        // Dense integers come first, in ascending order.
        assert_eq!(values[..3], [Value::Int(0), Value::Int(1), Value::Int(2)]);
    }
}
