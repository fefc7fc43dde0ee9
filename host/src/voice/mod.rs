//! Speech synthesis and recognition providers behind the WIT `voice` interface.
