//! Fairness of a drop: how far the order in which orders were served strays from the order in
//! which they were accepted. Both are lists of the same orders; [`compare`] ranks the orders in
//! both and counts the pairs served the other way round (Kendall inversions, by merge sort in
//! O(n log n)) and the largest move of one order.

use serde::Serialize;
use std::{collections::HashMap, hash::Hash};

/// Where the served order came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServedBy {
    /// The order of the reserve records on the product's partition (the queue: its lane
    /// applies them in that order), against the order the 202 answers arrived in.
    PartitionOffsets,
    /// The order the winning (201) answers arrived in, against the order their requests were
    /// sent in (the synchronous strategies).
    AnswerArrival,
}

impl ServedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PartitionOffsets => "partition offsets vs 202 arrival",
            Self::AnswerArrival => "201 arrival vs request sent",
        }
    }
}

/// How fairly a run served its orders.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Fairness {
    pub served_by: ServedBy,
    /// Orders in both lists.
    pub orders: usize,
    /// Pairs of orders served in the opposite order to their acceptance.
    pub inversions: u64,
    /// Inversions per thousand pairs: 0 is first come, first served; 500 is a shuffle; 1000
    /// is last come, first served.
    pub per_thousand_pairs: f64,
    /// The largest |served rank − accepted rank| of one order.
    pub max_displacement: usize,
}

/// Compares `served` with `accepted`, over the orders both hold (a repeat counts at its first
/// place).
pub fn compare<T: Eq + Hash + Copy>(served_by: ServedBy, accepted: &[T], served: &[T]) -> Fairness {
    let served_rank = ranks(served);
    let accepted_rank = ranks(accepted);
    let mut common: Vec<(usize, usize)> = accepted_rank
        .iter()
        .filter_map(|(item, &a)| Some((a, *served_rank.get(item)?)))
        .collect();
    common.sort_unstable();
    // Ranks among the common orders only, so an order missing from one list moves no other.
    let mut by_served: Vec<usize> = (0..common.len()).collect();
    by_served.sort_unstable_by_key(|&i| common[i].1);
    let mut dense = vec![0; common.len()];
    for (rank, &i) in by_served.iter().enumerate() {
        dense[i] = rank;
    }
    let max_displacement = dense
        .iter()
        .enumerate()
        .map(|(accepted, &served)| accepted.abs_diff(served))
        .max()
        .unwrap_or(0);
    let inversions = inversions(&dense);
    let n = common.len() as u64;
    let pairs = n * n.saturating_sub(1) / 2;
    Fairness {
        served_by,
        orders: common.len(),
        inversions,
        per_thousand_pairs: if pairs == 0 {
            0.0
        } else {
            inversions as f64 * 1000.0 / pairs as f64
        },
        max_displacement,
    }
}

/// Each item's first position in `list`.
fn ranks<T: Eq + Hash + Copy>(list: &[T]) -> HashMap<T, usize> {
    let mut ranks = HashMap::with_capacity(list.len());
    for (rank, &item) in list.iter().enumerate() {
        ranks.entry(item).or_insert(rank);
    }
    ranks
}

/// Pairs `i < j` with `values[i] > values[j]`, counted while merge-sorting a copy.
pub fn inversions(values: &[usize]) -> u64 {
    let mut values = values.to_vec();
    let mut scratch = vec![0; values.len()];
    sort_counting(&mut values, &mut scratch)
}

fn sort_counting(values: &mut [usize], scratch: &mut [usize]) -> u64 {
    let n = values.len();
    if n < 2 {
        return 0;
    }
    let mid = n / 2;
    let mut count = {
        let (left, right) = values.split_at_mut(mid);
        let (left_scratch, right_scratch) = scratch.split_at_mut(mid);
        sort_counting(left, left_scratch) + sort_counting(right, right_scratch)
    };
    let (mut i, mut j) = (0, mid);
    for slot in scratch.iter_mut().take(n) {
        if j >= n || (i < mid && values[i] <= values[j]) {
            *slot = values[i];
            i += 1;
        } else {
            // Every value left in the left half is greater than this one.
            count += (mid - i) as u64;
            *slot = values[j];
            j += 1;
        }
    }
    values.copy_from_slice(&scratch[..n]);
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute_force(values: &[usize]) -> u64 {
        let mut count = 0;
        for i in 0..values.len() {
            for j in i + 1..values.len() {
                count += u64::from(values[i] > values[j]);
            }
        }
        count
    }

    #[test]
    fn inversions_match_counting_every_pair() {
        assert_eq!(inversions(&[]), 0);
        assert_eq!(inversions(&[7]), 0);
        assert_eq!(inversions(&[0, 1, 2, 3, 4]), 0);
        assert_eq!(inversions(&[4, 3, 2, 1, 0]), 10);
        assert_eq!(inversions(&[1, 0, 3, 2]), 2);
        assert_eq!(inversions(&[2, 2, 1, 1]), 4);
        // Pseudo-random permutations of several lengths (a fixed linear congruential sequence).
        let mut state = 12_345u64;
        for n in [2usize, 3, 10, 57, 300] {
            let mut values: Vec<usize> = (0..n).collect();
            for i in (1..n).rev() {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                values.swap(i, (state >> 33) as usize % (i + 1));
            }
            assert_eq!(inversions(&values), brute_force(&values), "{values:?}");
        }
    }

    #[test]
    fn served_as_accepted_is_fair_and_reversed_is_not() {
        let accepted = [10, 20, 30, 40, 50];
        let fair = compare(ServedBy::AnswerArrival, &accepted, &accepted);
        assert_eq!((fair.inversions, fair.max_displacement), (0, 0));
        assert_eq!(fair.per_thousand_pairs, 0.0);
        let reversed = [50, 40, 30, 20, 10];
        let unfair = compare(ServedBy::AnswerArrival, &accepted, &reversed);
        assert_eq!((unfair.inversions, unfair.max_displacement), (10, 4));
        assert_eq!(unfair.per_thousand_pairs, 1000.0);
    }

    #[test]
    fn one_order_served_late_moves_as_far_as_it_was_overtaken() {
        // 10 accepted first, served last: overtaken by the 3 others.
        let late = compare(
            ServedBy::PartitionOffsets,
            &[10, 20, 30, 40],
            &[20, 30, 40, 10],
        );
        assert_eq!(
            (late.orders, late.inversions, late.max_displacement),
            (4, 3, 3)
        );
        assert_eq!(late.per_thousand_pairs, 500.0);
    }

    #[test]
    fn orders_missing_from_either_list_and_repeats_are_left_out() {
        // 99 was never served, 77 never accepted, and 30 is served twice (a redelivered record).
        let fairness = compare(
            ServedBy::PartitionOffsets,
            &[10, 99, 20, 30],
            &[77, 10, 30, 20, 30],
        );
        assert_eq!(fairness.orders, 3);
        assert_eq!((fairness.inversions, fairness.max_displacement), (1, 1));
        let empty = compare::<u8>(ServedBy::AnswerArrival, &[], &[1, 2]);
        assert_eq!((empty.orders, empty.per_thousand_pairs), (0, 0.0));
    }
}
