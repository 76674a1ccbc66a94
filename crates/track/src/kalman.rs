//! Constant-velocity Kalman filter over a face box (centre x, centre y, width, height), one
//! independent two-state filter per coordinate, with noise proportional to the box height as
//! in DeepSORT but in per-second units, so that sampled and irregular frame rates predict
//! alike.

use vigil_infer::BoundingBox;

/// Measurement noise, as a fraction of the box height (detector jitter).
const MEASUREMENT_STD_PER_HEIGHT: f32 = 0.05;
/// Random acceleration of the centre, box heights per second² (people walking, heads turning).
const CENTRE_ACCELERATION_PER_HEIGHT: f32 = 2.0;
/// Random acceleration of the box size, box heights per second² (walking towards the camera).
const SIZE_ACCELERATION_PER_HEIGHT: f32 = 0.5;
/// Initial velocity uncertainty, box heights per second.
const INITIAL_VELOCITY_STD_PER_HEIGHT: f32 = 1.0;

#[derive(Debug, Clone, Copy)]
struct Axis {
    position: f32,
    velocity: f32,
    /// Covariance of (position, velocity).
    covariance: [[f32; 2]; 2],
}

impl Axis {
    fn new(position: f32, position_std: f32, velocity_std: f32) -> Self {
        Self {
            position,
            velocity: 0.0,
            covariance: [[position_std.powi(2), 0.0], [0.0, velocity_std.powi(2)]],
        }
    }

    /// x ← F x, P ← F P Fᵀ + Q for white-noise acceleration of standard deviation `acceleration`.
    fn predict(&mut self, dt: f32, acceleration: f32) {
        self.position += self.velocity * dt;
        let [[p00, p01], [p10, p11]] = self.covariance;
        let q = acceleration * acceleration;
        let (dt2, dt3, dt4) = (dt * dt, dt * dt * dt, dt * dt * dt * dt);
        self.covariance = [
            [
                p00 + dt * (p01 + p10) + dt2 * p11 + q * dt4 / 4.0,
                p01 + dt * p11 + q * dt3 / 2.0,
            ],
            [p10 + dt * p11 + q * dt3 / 2.0, p11 + q * dt2],
        ];
    }

    fn update(&mut self, measured: f32, measurement_std: f32) {
        let [[p00, p01], [p10, p11]] = self.covariance;
        let innovation_variance = p00 + measurement_std * measurement_std;
        if innovation_variance <= f32::EPSILON {
            self.position = measured;
            return;
        }
        let (gain_position, gain_velocity) = (p00 / innovation_variance, p10 / innovation_variance);
        let residual = measured - self.position;
        self.position += gain_position * residual;
        self.velocity += gain_velocity * residual;
        self.covariance = [
            [(1.0 - gain_position) * p00, (1.0 - gain_position) * p01],
            [p10 - gain_velocity * p00, p11 - gain_velocity * p01],
        ];
    }
}

#[derive(Debug, Clone)]
pub(crate) struct BoxFilter {
    /// Centre x, centre y, width, height.
    axes: [Axis; 4],
}

impl BoxFilter {
    pub(crate) fn new(bbox: &BoundingBox) -> Self {
        let height = bbox.height().max(1.0);
        let [cx, cy] = bbox.center();
        let position_std = 2.0 * MEASUREMENT_STD_PER_HEIGHT * height;
        let velocity_std = INITIAL_VELOCITY_STD_PER_HEIGHT * height;
        Self {
            axes: [
                Axis::new(cx, position_std, velocity_std),
                Axis::new(cy, position_std, velocity_std),
                Axis::new(bbox.width(), position_std, velocity_std),
                Axis::new(height, position_std, velocity_std),
            ],
        }
    }

    fn height(&self) -> f32 {
        self.axes[3].position.max(1.0)
    }

    pub(crate) fn predict(&mut self, dt_seconds: f32) {
        if dt_seconds <= 0.0 {
            return;
        }
        let height = self.height();
        for (index, axis) in self.axes.iter_mut().enumerate() {
            let acceleration = if index < 2 {
                CENTRE_ACCELERATION_PER_HEIGHT
            } else {
                SIZE_ACCELERATION_PER_HEIGHT
            };
            axis.predict(dt_seconds, acceleration * height);
        }
    }

    pub(crate) fn update(&mut self, bbox: &BoundingBox) {
        let measurement_std = MEASUREMENT_STD_PER_HEIGHT * bbox.height().max(1.0);
        let [cx, cy] = bbox.center();
        for (axis, measured) in self
            .axes
            .iter_mut()
            .zip([cx, cy, bbox.width(), bbox.height()])
        {
            axis.update(measured, measurement_std);
        }
    }

    /// Forgets the velocity: the scene was seen static, so whatever moved has stopped.
    pub(crate) fn stop(&mut self) {
        for axis in self.axes.iter_mut() {
            axis.velocity = 0.0;
        }
    }

    pub(crate) fn bbox(&self) -> BoundingBox {
        let [cx, cy, width, height] = self.axes.map(|axis| axis.position);
        BoundingBox::from_centre(cx, cy, width.max(1.0), height.max(1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_box_moving_steadily_is_predicted_ahead() {
        let mut filter = BoxFilter::new(&BoundingBox::from_centre(100.0, 100.0, 50.0, 60.0));
        for step in 1..=10 {
            filter.predict(0.1);
            filter.update(&BoundingBox::from_centre(
                100.0 + 10.0 * step as f32,
                100.0,
                50.0,
                60.0,
            ));
        }
        filter.predict(0.1);
        let [cx, cy] = filter.bbox().center();
        assert!((cx - 210.0).abs() < 5.0, "{cx}");
        assert!((cy - 100.0).abs() < 1.0, "{cy}");
        filter.stop();
        filter.predict(1.0);
        assert!((filter.bbox().center()[0] - cx).abs() < 1e-3);
    }
}
