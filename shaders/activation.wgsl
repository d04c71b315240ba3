// Element-wise output activations in `acts` (twin of cpu::activation):
// `forward`: y = act(x) (x and y may be the same tensor);
// `backward`: dy *= act'(at the output y), in place.
// kind 0 = linear, 1 = LeakyReLU with negative slope `slope`.

@compute @workgroup_size(64)
fn forward(gid: Grid) {
    let i = thread_index(gid);
    if i >= p.n {
        return;
    }
    var v = acts[p.x + i];
    if p.kind == 1u && v < 0.0 {
        v *= p.slope;
    }
    acts[p.y + i] = v;
}

@compute @workgroup_size(64)
fn backward(gid: Grid) {
    let i = thread_index(gid);
    if i >= p.n || p.kind == 0u {
        return;
    }
    // With a slope in [0, 1) the output is negative exactly where the input was.
    if acts[p.y + i] <= 0.0 {
        acts[p.dy + i] *= p.slope;
    }
}
