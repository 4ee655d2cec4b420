//! One sort for the whole crate.
//!
//! The standard library's sorts are generic over the element type and the
//! comparator: every `sort_by` call site compiles its own copy of driftsort or
//! ipnsort (2–4 KB of wasm each; 17 call sites came to ~56 KB, STYLE.md
//! habit 12). Here each call sorts a permutation of `u32` indices with a
//! `dyn` comparator, so one small sort is compiled once; each element type
//! only adds a few instructions that move its elements into place. It costs a small allocation and an indirect call per
//! comparison, which none of the callers (short lists, snapshot decoding of
//! already-sorted input) notice.

use std::cmp::Ordering;

/// Sorts `v` by `cmp`, stably (equal elements keep their order).
pub fn sort_by<T>(v: &mut [T], cmp: impl Fn(&T, &T) -> Ordering) {
    if v.len() < 2 {
        return;
    }
    if let Some(order) = sorted_indices(v.len(), &|a, b| cmp(&v[a], &v[b])) {
        permute(order, &mut |i, j| v.swap(i, j));
    }
}

/// Sorts `v` by the key `key` extracts, stably.
pub fn sort_by_key<T, K: Ord>(v: &mut [T], key: impl Fn(&T) -> K) {
    sort_by(v, |a, b| key(a).cmp(&key(b)));
}

/// Sorts `v` and removes repeated elements.
pub fn sort_dedup<T: Ord>(v: &mut Vec<T>) {
    sort_by(v, T::cmp);
    v.dedup();
}

/// The indices `0..n` in the order `cmp` gives their elements, stably;
/// `None` when they already are in order (nothing allocated).
///
/// A bottom-up merge sort rather than `slice::sort*`: even one instance of
/// the standard sorts is ~5 KB of wasm (their small-sort networks, pivot
/// selection and fallbacks pay off for big inputs; ours are short lists and
/// snapshot entries that are already in order). This is the textbook
/// algorithm, checked against the standard stable sort in the tests below.
#[inline(never)]
fn sorted_indices(n: usize, cmp: &dyn Fn(usize, usize) -> Ordering) -> Option<Vec<u32>> {
    // Already in order (snapshot decoding, most short lists): one pass.
    if (1..n).all(|i| cmp(i - 1, i) != Ordering::Greater) {
        return None;
    }
    let mut a: Vec<u32> = (0..n as u32).collect();
    let mut b = vec![0u32; n];
    let mut width = 1;
    while width < n {
        let mut lo = 0;
        while lo < n {
            let mid = (lo + width).min(n);
            let hi = (lo + 2 * width).min(n);
            let (mut i, mut j) = (lo, mid);
            for slot in &mut b[lo..hi] {
                // Ties take the left run's element first: stable.
                if i < mid && (j >= hi || cmp(a[i] as usize, a[j] as usize) != Ordering::Greater) {
                    *slot = a[i];
                    i += 1;
                } else {
                    *slot = a[j];
                    j += 1;
                }
            }
            lo = hi;
        }
        std::mem::swap(&mut a, &mut b);
        width *= 2;
    }
    Some(a)
}

/// Moves the element at `order[k]` to position `k`, for every `k`, through
/// `swap` (cycle by cycle: at most n - 1 swaps).
#[inline(never)]
fn permute(order: Vec<u32>, swap: &mut dyn FnMut(usize, usize)) {
    // dest[i]: where the element now at i must go.
    let mut dest = vec![0u32; order.len()];
    for (k, &i) in order.iter().enumerate() {
        dest[i as usize] = k as u32;
    }
    for i in 0..dest.len() {
        loop {
            let j = dest[i] as usize;
            if j == i {
                break;
            }
            swap(i, j);
            dest.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_stably_like_the_standard_sort() {
        // Random inputs of every length up to 99, with many ties.
        let mut seed = 12345u32;
        for n in 0..600 {
            let len = n % 100;
            let mut v: Vec<(u16, u32)> = (0..len)
                .map(|i| {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    let keys = if n % 2 == 0 { 5 } else { 1000 };
                    (((seed >> 16) % keys) as u16, i as u32)
                })
                .collect();
            let mut want = v.clone();
            want.sort_by_key(|p| p.0);
            sort_by_key(&mut v, |p| p.0);
            assert_eq!(v, want);
        }
    }

    #[test]
    fn dedups() {
        let mut v = vec!["b".to_string(), "a".into(), "b".into(), "c".into(), "a".into()];
        sort_dedup(&mut v);
        assert_eq!(v, ["a", "b", "c"]);
    }
}
