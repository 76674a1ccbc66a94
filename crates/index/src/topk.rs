//! Bounded top-k selection with a deterministic order: higher score first, and on equal scores
//! the smaller template id first, so results never depend on thread scheduling.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use vigil_base::TemplateId;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Candidate {
    pub(crate) score: f32,
    pub(crate) template: TemplateId,
    pub(crate) row: usize,
}

impl Candidate {
    /// Ranking order: `Less` means `self` ranks ahead of `other`.
    pub(crate) fn rank_cmp(&self, other: &Self) -> Ordering {
        other
            .score
            .total_cmp(&self.score)
            .then(self.template.cmp(&other.template))
    }
}

/// Heap entry ordered so that the heap's top is the worst candidate kept.
struct WorstFirst(Candidate);

impl PartialEq for WorstFirst {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for WorstFirst {}
impl PartialOrd for WorstFirst {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for WorstFirst {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.rank_cmp(&other.0)
    }
}

/// Keeps the `capacity` best candidates offered.
pub(crate) struct TopK {
    capacity: usize,
    heap: BinaryHeap<WorstFirst>,
}

impl TopK {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            heap: BinaryHeap::with_capacity(capacity.min(1 << 16) + 1),
        }
    }

    /// A score below this cannot enter; a score equal to it may, on a smaller template id.
    pub(crate) fn threshold(&self) -> f32 {
        if self.capacity == 0 {
            f32::INFINITY
        } else if self.heap.len() < self.capacity {
            f32::NEG_INFINITY
        } else {
            self.heap
                .peek()
                .map_or(f32::NEG_INFINITY, |worst| worst.0.score)
        }
    }

    pub(crate) fn offer(&mut self, candidate: Candidate) {
        if self.heap.len() < self.capacity {
            self.heap.push(WorstFirst(candidate));
        } else if let Some(mut worst) = self.heap.peek_mut() {
            if candidate.rank_cmp(&worst.0) == Ordering::Less {
                *worst = WorstFirst(candidate);
            }
        }
    }

    pub(crate) fn merge(mut self, other: Self) -> Self {
        for entry in other.heap {
            self.offer(entry.0);
        }
        self
    }

    /// Best first.
    pub(crate) fn into_sorted(self) -> Vec<Candidate> {
        // into_sorted_vec is ascending by Ord, and Ord puts better candidates first.
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|entry| entry.0)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(score: f32, template: i64) -> Candidate {
        Candidate {
            score,
            template: TemplateId(template),
            row: template as usize,
        }
    }

    #[test]
    fn keeps_best_scores_in_descending_order() {
        let mut top = TopK::new(3);
        for (score, id) in [(0.1, 1), (0.9, 2), (0.5, 3), (0.7, 4), (0.2, 5)] {
            top.offer(candidate(score, id));
        }
        let ids: Vec<i64> = top.into_sorted().iter().map(|c| c.template.0).collect();
        assert_eq!(ids, vec![2, 4, 3]);
    }

    #[test]
    fn equal_scores_prefer_smaller_template_whatever_the_arrival_order() {
        for order in [[5, 3, 9, 1], [1, 9, 3, 5], [9, 5, 1, 3]] {
            let mut top = TopK::new(2);
            for id in order {
                top.offer(candidate(0.5, id));
            }
            let ids: Vec<i64> = top.into_sorted().iter().map(|c| c.template.0).collect();
            assert_eq!(ids, vec![1, 3]);
        }
    }

    #[test]
    fn zero_capacity_accepts_nothing() {
        let mut top = TopK::new(0);
        assert_eq!(top.threshold(), f32::INFINITY);
        top.offer(candidate(1.0, 1));
        assert!(top.into_sorted().is_empty());
    }

    #[test]
    fn merging_two_partial_selections_equals_one_selection() {
        let mut left = TopK::new(2);
        let mut right = TopK::new(2);
        left.offer(candidate(0.3, 1));
        left.offer(candidate(0.8, 2));
        right.offer(candidate(0.9, 3));
        right.offer(candidate(0.1, 4));
        let ids: Vec<i64> = left
            .merge(right)
            .into_sorted()
            .iter()
            .map(|c| c.template.0)
            .collect();
        assert_eq!(ids, vec![3, 2]);
    }
}
