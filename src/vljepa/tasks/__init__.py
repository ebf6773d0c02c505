"""What a trained model does: embed clips and texts (`embed`), classify (`classify`), retrieve (`retrieve`),
answer multiple-choice questions (`vqa`), caption a stream with selective decoding (`stream`: the pure engine;
`stream_captioner`: over a video) and keep a persistent FAISS index of a video library (`index`).
"""
