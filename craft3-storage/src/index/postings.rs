//! Postings: the sorted list of series ids that carry one label pair, and
//! the set operations a selector is answered with.
//!
//! The bottleneck they remove: phase0 answers `cpu_usage{host="a"}` by
//! parsing every line ever written. With a postings list per `name=value`,
//! the same question is one lookup per matcher and a merge of sorted integer
//! lists — linear in the series that *could* match, not in the data. This is
//! Prometheus' `index/postings.go`, reduced to sorted `Vec<u32>`s (docs
//! chapter 3, "The inverted index").
//!
//! Every function here takes lists sorted ascending without duplicates and
//! returns one that is too. Series ids are handed out in increasing order,
//! so the head keeps a list sorted by pushing to its end.

/// A series' number in the head: dense, assigned in creation order.
pub type SeriesId = u32;

/// Ids present in both `a` and `b`.
pub fn intersect(a: &[SeriesId], b: &[SeriesId]) -> Vec<SeriesId> {
    let (small, large) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let mut out = Vec::with_capacity(small.len());
    // A short list against a long one: gallop (binary search) through the
    // long one instead of walking it.
    if small.len() * 16 < large.len() {
        let mut rest = large;
        for &id in small {
            match rest.binary_search(&id) {
                Ok(at) => {
                    out.push(id);
                    rest = &rest[at + 1..];
                }
                Err(at) => rest = &rest[at..],
            }
        }
        return out;
    }
    let (mut i, mut j) = (0, 0);
    while i < small.len() && j < large.len() {
        match small[i].cmp(&large[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(small[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// Ids present in `a` or `b`.
pub fn union(a: &[SeriesId], b: &[SeriesId]) -> Vec<SeriesId> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => {
                out.push(a[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(b[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

/// Ids present in any of `lists`: pairwise merges, smallest lists first, so
/// a regex matching many values costs `n log k`, not `n k`.
pub fn union_all(mut lists: Vec<Vec<SeriesId>>) -> Vec<SeriesId> {
    while lists.len() > 1 {
        lists.sort_by_key(|list| std::cmp::Reverse(list.len()));
        let (Some(a), Some(b)) = (lists.pop(), lists.pop()) else {
            break;
        };
        lists.push(union(&a, &b));
    }
    lists.pop().unwrap_or_default()
}

/// Ids in `a` that are not in `b`.
pub fn difference(a: &[SeriesId], b: &[SeriesId]) -> Vec<SeriesId> {
    let mut out = Vec::with_capacity(a.len());
    let mut j = 0;
    for &id in a {
        while j < b.len() && b[j] < id {
            j += 1;
        }
        if j >= b.len() || b[j] != id {
            out.push(id);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intersection_keeps_common_ids() {
        assert_eq!(intersect(&[1, 3, 5, 7], &[2, 3, 4, 7, 9]), vec![3, 7]);
        assert_eq!(intersect(&[], &[1, 2]), Vec::<SeriesId>::new());
        // The galloping path: a short list against a long one.
        let long: Vec<SeriesId> = (0..1_000).collect();
        assert_eq!(intersect(&[5, 500, 2_000], &long), vec![5, 500]);
        assert_eq!(intersect(&long, &[999, 1_000]), vec![999]);
    }

    #[test]
    fn union_merges_without_duplicates() {
        assert_eq!(union(&[1, 3, 5], &[2, 3, 6]), vec![1, 2, 3, 5, 6]);
        assert_eq!(union(&[], &[4]), vec![4]);
        assert_eq!(
            union_all(vec![vec![9], vec![1, 4], vec![4, 5], vec![]]),
            vec![1, 4, 5, 9]
        );
        assert_eq!(union_all(Vec::new()), Vec::<SeriesId>::new());
    }

    #[test]
    fn difference_removes_ids() {
        assert_eq!(difference(&[1, 2, 3, 4, 5], &[2, 4, 6]), vec![1, 3, 5]);
        assert_eq!(difference(&[1, 2], &[]), vec![1, 2]);
        assert_eq!(difference(&[], &[1]), Vec::<SeriesId>::new());
    }
}
