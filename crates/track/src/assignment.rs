//! Minimum-cost assignment (Hungarian / Kuhn–Munkres with potentials, O(n²m)) over a small
//! cost matrix where some pairs are forbidden.

/// Pairs `(row, column)` that minimise the total cost among assignments with the most allowed
/// pairs. `costs[row][column]` is `None` when the pair must not match. Deterministic: equal
/// costs resolve the same way on every run.
pub(crate) fn assign(costs: &[Vec<Option<f32>>]) -> Vec<(usize, usize)> {
    let rows = costs.len();
    let columns = costs.first().map_or(0, Vec::len);
    if rows == 0 || columns == 0 {
        return Vec::new();
    }
    // A forbidden pair costs more than any full assignment of allowed pairs, so the solver
    // first maximises the number of allowed pairs and then minimises their cost.
    let allowed_max = costs
        .iter()
        .flatten()
        .flatten()
        .fold(0f64, |max, cost| max.max(f64::from(*cost)));
    let forbidden = (allowed_max + 1.0) * (rows.max(columns) as f64 + 1.0);
    let cost_at = |row: usize, column: usize| -> f64 {
        costs[row]
            .get(column)
            .copied()
            .flatten()
            .map_or(forbidden, f64::from)
    };
    // The algorithm needs rows ≤ columns; solve the transpose otherwise.
    let transposed = rows > columns;
    let (n, m) = if transposed {
        (columns, rows)
    } else {
        (rows, columns)
    };
    let cost = |i: usize, j: usize| {
        if transposed {
            cost_at(j, i)
        } else {
            cost_at(i, j)
        }
    };
    let matched_column_of = hungarian(n, m, cost);
    matched_column_of
        .into_iter()
        .enumerate()
        .map(|(i, j)| if transposed { (j, i) } else { (i, j) })
        .filter(|&(row, column)| costs[row].get(column).copied().flatten().is_some())
        .collect()
}

/// Column assigned to each of the `n` rows (n ≤ m); 1-based internal indexing as in the
/// classic potentials formulation.
fn hungarian(n: usize, m: usize, cost: impl Fn(usize, usize) -> f64) -> Vec<usize> {
    let mut row_potential = vec![0f64; n + 1];
    let mut column_potential = vec![0f64; m + 1];
    // row_of_column[j]: the row matched to column j (0 = none).
    let mut row_of_column = vec![0usize; m + 1];
    let mut way = vec![0usize; m + 1];
    for row in 1..=n {
        row_of_column[0] = row;
        let mut column = 0usize;
        let mut min_slack = vec![f64::INFINITY; m + 1];
        let mut used = vec![false; m + 1];
        loop {
            used[column] = true;
            let current_row = row_of_column[column];
            let mut delta = f64::INFINITY;
            let mut next_column = 0usize;
            for j in 1..=m {
                if used[j] {
                    continue;
                }
                let reduced =
                    cost(current_row - 1, j - 1) - row_potential[current_row] - column_potential[j];
                if reduced < min_slack[j] {
                    min_slack[j] = reduced;
                    way[j] = column;
                }
                if min_slack[j] < delta {
                    delta = min_slack[j];
                    next_column = j;
                }
            }
            for j in 0..=m {
                if used[j] {
                    row_potential[row_of_column[j]] += delta;
                    column_potential[j] -= delta;
                } else {
                    min_slack[j] -= delta;
                }
            }
            column = next_column;
            if row_of_column[column] == 0 {
                break;
            }
        }
        loop {
            let previous = way[column];
            row_of_column[column] = row_of_column[previous];
            column = previous;
            if column == 0 {
                break;
            }
        }
    }
    let mut column_of_row = vec![0usize; n];
    for j in 1..=m {
        if row_of_column[j] != 0 {
            column_of_row[row_of_column[j] - 1] = j - 1;
        }
    }
    column_of_row
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_cheapest_total_not_the_greedy_choice() {
        // Greedy would take (0,0)=1 and then (1,1)=10; the optimum is 2 + 2.
        let costs = vec![vec![Some(1.0), Some(2.0)], vec![Some(2.0), Some(10.0)]];
        let mut pairs = assign(&costs);
        pairs.sort();
        assert_eq!(pairs, vec![(0, 1), (1, 0)]);
    }

    #[test]
    fn forbidden_pairs_are_never_returned_and_do_not_block_allowed_ones() {
        let costs = vec![
            vec![None, Some(0.5), None],
            vec![None, Some(0.1), None],
            vec![Some(0.9), None, None],
        ];
        let mut pairs = assign(&costs);
        pairs.sort();
        // Row 0 and row 1 both want column 1; the cheaper total keeps the cheaper pair.
        assert_eq!(pairs, vec![(1, 1), (2, 0)]);
    }

    #[test]
    fn rectangular_matrices_both_ways() {
        let wide = vec![vec![Some(0.3), Some(0.1), Some(0.2)]];
        assert_eq!(assign(&wide), vec![(0, 1)]);
        let tall = vec![vec![Some(0.3)], vec![Some(0.1)], vec![Some(0.2)]];
        assert_eq!(assign(&tall), vec![(1, 0)]);
        assert!(assign(&[]).is_empty());
        assert!(assign(&[vec![None, None]]).is_empty());
    }
}
