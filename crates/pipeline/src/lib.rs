//! Face service: joins models, store, index and calibration into enrol, identify, verify and evaluation
