//! Face models: decoding, detection, alignment, quality, embedding, model manifest
