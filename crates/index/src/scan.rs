//! The parallel exhaustive scan: rows split into contiguous ranges, one bounded heap per range
//! (per query), heaps merged at the end. Runs on whatever rayon pool is current, so callers pin
//! the thread count with `ThreadPool::install`.

use crate::kernel::{KernelSet, PackedQueries, TileScores, QUERY_GROUP, TILE_ROWS};
use crate::topk::{Candidate, TopK};
use rayon::prelude::*;
use std::ops::Range;
use vigil_base::TemplateId;

/// Below this many rows a task is not worth a thread hand-off (~0.1 ms of scanning at 512-d).
const MIN_ROWS_PER_TASK: usize = 8192;
/// More tasks than threads, so a thread slowed by a neighbour does not hold up the search.
const TASKS_PER_THREAD: usize = 4;
/// Scores computed before the threshold pass of the single-query scan; small enough for L1.
const SCORE_BLOCK_ROWS: usize = 256;
/// Rows kept hot in L2 while every query group passes over them (96 KiB at 512-d).
const ROW_BLOCK_TILES: usize = 8;

/// Borrowed row-major rows and the template id of each row.
#[derive(Clone, Copy)]
pub(crate) struct RowsView<'a> {
    pub(crate) rows: &'a [f32],
    pub(crate) templates: &'a [TemplateId],
    pub(crate) dimension: usize,
}

impl RowsView<'_> {
    fn row_count(&self) -> usize {
        self.templates.len()
    }

    fn rows_in(&self, range: &Range<usize>) -> &[f32] {
        &self.rows[range.start * self.dimension..range.end * self.dimension]
    }
}

/// Contiguous row ranges covering `0..row_count`, sized for the current pool.
pub(crate) fn task_ranges(row_count: usize, minimum_rows: usize) -> Vec<Range<usize>> {
    let most_tasks = rayon::current_num_threads().max(1) * TASKS_PER_THREAD;
    let tasks = (row_count / minimum_rows.max(1)).clamp(1, most_tasks);
    let rows_per_task = row_count.div_ceil(tasks).max(1);
    (0..row_count)
        .step_by(rows_per_task)
        .map(|start| start..(start + rows_per_task).min(row_count))
        .collect()
}

/// Exact top-k of one query, best first.
pub(crate) fn top_k_single(view: RowsView<'_>, query: &[f32], k: usize) -> Vec<Candidate> {
    if k == 0 || view.row_count() == 0 {
        return Vec::new();
    }
    let kernels = KernelSet::detect();
    task_ranges(view.row_count(), MIN_ROWS_PER_TASK)
        .into_par_iter()
        .map(|range| scan_range_single(view, kernels, query, k, range))
        .reduce(|| TopK::new(k), TopK::merge)
        .into_sorted()
}

fn scan_range_single(
    view: RowsView<'_>,
    kernels: KernelSet,
    query: &[f32],
    k: usize,
    range: Range<usize>,
) -> TopK {
    let mut top = TopK::new(k);
    let mut scores = [0f32; SCORE_BLOCK_ROWS];
    let mut start = range.start;
    while start < range.end {
        let end = (start + SCORE_BLOCK_ROWS).min(range.end);
        let block_scores = &mut scores[..end - start];
        kernels.dot_rows(query, view.rows_in(&(start..end)), block_scores);
        let mut threshold = top.threshold();
        for (offset, score) in block_scores.iter().enumerate() {
            if *score >= threshold {
                let row = start + offset;
                top.offer(Candidate {
                    score: *score,
                    template: view.templates[row],
                    row,
                });
                threshold = top.threshold();
            }
        }
        start = end;
    }
    top
}

/// Exact top-k of each query, best first, with the blocked tile kernel: each row is read from
/// memory once per batch instead of once per query.
pub(crate) fn top_k_batch(view: RowsView<'_>, queries: &[&[f32]], k: usize) -> Vec<Vec<Candidate>> {
    if k == 0 || view.row_count() == 0 {
        return vec![Vec::new(); queries.len()];
    }
    let kernels = KernelSet::detect();
    let packed = PackedQueries::pack(queries, view.dimension);
    // a batch does `queries` times the work per row, so smaller ranges still pay for a task
    let minimum_rows = (MIN_ROWS_PER_TASK / queries.len().max(1)).max(TILE_ROWS);
    let empty = || (0..queries.len()).map(|_| TopK::new(k)).collect::<Vec<_>>();
    task_ranges(view.row_count(), minimum_rows)
        .into_par_iter()
        .map(|range| scan_range_batch(view, kernels, &packed, queries.len(), k, range))
        .reduce(empty, |left, right| {
            left.into_iter()
                .zip(right)
                .map(|(l, r)| l.merge(r))
                .collect()
        })
        .into_iter()
        .map(TopK::into_sorted)
        .collect()
}

fn scan_range_batch(
    view: RowsView<'_>,
    kernels: KernelSet,
    packed: &PackedQueries,
    query_count: usize,
    k: usize,
    range: Range<usize>,
) -> Vec<TopK> {
    let mut tops: Vec<TopK> = (0..query_count).map(|_| TopK::new(k)).collect();
    let mut thresholds = vec![f32::NEG_INFINITY; query_count];
    let mut tile_scores: TileScores = [[0f32; QUERY_GROUP]; TILE_ROWS];
    let block_rows = ROW_BLOCK_TILES * TILE_ROWS;
    let mut block_start = range.start;
    while block_start < range.end {
        let block_end = (block_start + block_rows).min(range.end);
        for group in 0..packed.group_count() {
            let first_query = group * QUERY_GROUP;
            let group_queries = (query_count - first_query).min(QUERY_GROUP);
            let mut tile_start = block_start;
            while tile_start < block_end {
                let tile_end = (tile_start + TILE_ROWS).min(block_end);
                let tile_range = tile_start..tile_end;
                kernels.tile(
                    view.rows_in(&tile_range),
                    view.dimension,
                    packed.group(group),
                    &mut tile_scores,
                );
                for (row, row_scores) in tile_range.zip(&tile_scores) {
                    for (lane, &score) in row_scores[..group_queries].iter().enumerate() {
                        let query = first_query + lane;
                        if score >= thresholds[query] {
                            let candidate = Candidate {
                                score,
                                template: view.templates[row],
                                row,
                            };
                            tops[query].offer(candidate);
                            thresholds[query] = tops[query].threshold();
                        }
                    }
                }
                tile_start = tile_end;
            }
        }
        block_start = block_end;
    }
    tops
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_ranges_cover_every_row_exactly_once() {
        for row_count in [1, 5, 8191, 8192, 100_000, 1_000_003] {
            for minimum in [1, 6, 8192] {
                let ranges = task_ranges(row_count, minimum);
                assert_eq!(ranges.first().map(|r| r.start), Some(0));
                assert_eq!(ranges.last().map(|r| r.end), Some(row_count));
                for pair in ranges.windows(2) {
                    assert_eq!(pair[0].end, pair[1].start);
                    assert!(pair[0].start < pair[0].end);
                }
            }
        }
    }
}
