// Mean squared error of the predictions and its gradient (twin of
// cpu::network::mse_loss): dpred = 2(pred - target)/n, and the loss into
// this step's slot of the loss ring in `stats`. One workgroup: each thread sums a
// strided share, then a tree reduction in workgroup memory. Under a loss
// burn-in (`burn_in` > 0; rows of `channels` elements, `b` lanes) the rows it
// leaves out add nothing, get a zero gradient, and n counts the others.


@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32) {
    let c = max(p.channels, 1u);
    let n = targets_counted(p.n, p.channels, p.b, p.burn_in);
    let scale = 2.0 / f32(n);
    var s = 0.0;
    for (var i = lid; i < p.n; i += REDUCE_WG) {
        if !burn_in_counts(i / c, p.b, p.burn_in) {
            acts[p.dpred + i] = 0.0;
            continue;
        }
        let e = acts[p.pred + i] - acts[p.targets + i];
        acts[p.dpred + i] = scale * e;
        s = fma(e, e, s);
    }
    loss_into_ring(lid, reduce_sum(lid, s), n, p.loss);
}
