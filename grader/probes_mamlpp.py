"""Probes of the extra credit, MAML++ (``maml.py``'s ``MAMLPlusPlus``), run in the sandbox like ``grader/probes.py``.

One probe, ``mamlpp``, computes everything the MAML++ checks compare (the
public ones on ``grader/fixtures/mamlpp.npz``, the hidden ones on other tasks
and settings) by group, so that a method left as a TODO, or one that raises,
costs only the checks of its group. The fixture generator
(``instructor/make_fixtures.py``) runs the same code on the reference.
"""

from __future__ import annotations

from grader import compare
from grader.probes import student_module

MAMLPP_TECHNIQUES = {"multi_step_loss": True, "per_step_inner_lrs": True, "per_step_bn_stats": True,
                     "per_step_bn_weights": True}  # the ones that change what outer_loop computes


def _tasks(inputs: dict) -> list[tuple]:
    import tensorflow as tf

    return [tuple(tf.constant(part) for part in task) for task in compare.tasks_from_fixture(inputs)]


def _failure(error: BaseException) -> dict:
    from grader.failures import describe_failure

    status, message = describe_failure(error)
    return {"failure": {"status": status, "message": message}}


def mamlpp_model(module, inputs: dict, **techniques):
    """``module.MAMLPlusPlus`` in float64 with the fixture's parameters and MAML++ variables.

    ``inputs`` holds a maml fixture's theta and tasks plus ``mamlpp/<setting>``
    (msl_iterations, da_iterations, cosine_iterations, min_outer_lr, the
    iteration the outer loop is computed at) and the initial values of the
    per-step variables (``mamlpp/lr/<key>``, ``mamlpp/bn/<key>``), non-trivial
    so that a variable used in the wrong place shows in the results.
    """
    import tensorflow as tf

    theta = {name: inputs[f"theta/{name}"] for name in compare.parameter_names(inputs)}
    original = module.init_parameters
    module.init_parameters = lambda *args, dtype=tf.float64, **kwargs: {
        name: tf.constant(value, dtype) for name, value in theta.items()}
    try:
        model = module.MAMLPlusPlus(
            int(inputs["num_way"]), num_inner_steps=int(inputs["num_inner_steps"]),
            first_order=not techniques.get("derivative_annealing", False), dtype=tf.float64,
            msl_iterations=int(inputs["mamlpp/msl_iterations"]), da_iterations=int(inputs["mamlpp/da_iterations"]),
            cosine_iterations=int(inputs["mamlpp/cosine_iterations"]),
            min_outer_lr=float(inputs["mamlpp/min_outer_lr"]), **techniques)
    finally:
        module.init_parameters = original
    for prefix, variables in (("mamlpp/lr/", model.inner_lrs), ("mamlpp/bn/", {**model.bn_weights, **model.bn_stats})):
        for name, variable in variables.items():
            if prefix + name in inputs:
                variable.assign(inputs[prefix + name])
    model.optimizer.iterations.assign(int(inputs["mamlpp/iteration"]))
    return model


def mamlpp_results(module, inputs: dict) -> dict:
    """What ``module``'s MAMLPlusPlus computes on the fixture, by group; a group that raised holds its failure.

    Groups:
        schedules   importance/t<t> (MSL), second_order_at (DA), cosine_lr (CA) at the iterations
                    mamlpp/schedule_iterations, constant_lr (CA off), inner_lr (LSLR: inner_lr(name, step),
                    names sorted x steps)
        batch_norm  bn/train, bn/eval: batch_norm_step on a fixed input (layer 1, step index 2) with
                    train=True, then train=False; bn/stats/<key>: the running statistics after both
        adapt       adapt/phi/<name>, adapt/accuracies: adapt on task 0 (train=True, first order)
        outer       outer/loss, outer/accuracies_support, outer/accuracy_query: outer_loop on all tasks
                    (train=True, at iteration mamlpp/iteration, with the multi-step loss as train_step
                    asks for it there); grad_fo/<key>, grad_so/<key>: its gradient w.r.t. every trainable
                    variable, first and second order; eval/loss, eval/accuracy_query: outer_loop(train=False)
    """
    import numpy as np
    import tensorflow as tf

    iterations = [int(t) for t in inputs["mamlpp/schedule_iterations"]]
    iteration = int(inputs["mamlpp/iteration"])

    def numbers(value):
        return np.asarray(value.numpy() if hasattr(value, "numpy") else value, np.float64)

    def schedules():
        out = {}
        model = mamlpp_model(module, inputs, **MAMLPP_TECHNIQUES)
        for t in iterations:
            out[f"importance/t{t}"] = numbers(model.importance_vector(tf.constant(t, tf.int64)))
        names = sorted(model.meta_parameters)
        out["inner_lr"] = np.array([[float(model.inner_lr(name, step)) for step in range(model.num_inner_steps)]
                                    for name in names])
        annealed = mamlpp_model(module, inputs, derivative_annealing=True)
        out["second_order_at"] = np.array([bool(annealed.second_order_at(t)) for t in iterations])
        cosine = mamlpp_model(module, inputs, cosine_outer_lr=True)
        schedule = cosine.outer_learning_rate(1e-3, int(inputs["mamlpp/cosine_iterations"]),
                                              float(inputs["mamlpp/min_outer_lr"]))
        out["cosine_lr"] = np.array([float(schedule(t)) for t in iterations])
        out["constant_lr"] = np.array(float(model.outer_learning_rate(1e-3, 20, 1e-4)))
        return out

    def batch_norm():
        model = mamlpp_model(module, inputs, **MAMLPP_TECHNIQUES)
        x = tf.constant(inputs["mamlpp/bn_input"])
        out = {"bn/train": numbers(model.batch_norm_step(x, 1, 2, True)),
               "bn/eval": numbers(model.batch_norm_step(x, 1, 2, False))}
        out.update({f"bn/stats/{key}": numbers(v) for key, v in model.bn_stats.items()})
        return out

    def adapt():
        model = mamlpp_model(module, inputs, **MAMLPP_TECHNIQUES)
        images, labels = _tasks(inputs)[0][:2]
        trajectory, accuracies = model.adapt(images, labels, train=True)
        return {**{f"adapt/phi/{name}": numbers(value) for name, value in trajectory[-1].items()},
                "adapt/accuracies": numbers(accuracies)}

    def outer():
        out = {}
        for order, second in (("fo", False), ("so", True)):
            model = mamlpp_model(module, inputs, **MAMLPP_TECHNIQUES)
            variables = {**model.meta_parameters, **{f"inner_lr/{k}": v for k, v in model.inner_lrs.items()},
                         **{f"bn/{k}": v for k, v in model.bn_weights.items()}}
            with tf.GradientTape() as tape:
                tape.watch(list(variables.values()))
                loss, accuracies_support, accuracy_query = model.outer_loop(
                    _tasks(inputs), train=True, second_order=second, multi_step=model.multi_step_at(iteration))
            gradients = tape.gradient(loss, variables)  # None: does not reach the loss (as train_step: zeros)
            out.update({f"grad_{order}/{name}": numbers(g) if g is not None else np.zeros(variables[name].shape)
                        for name, g in gradients.items()})
            if not second:
                out.update({"outer/loss": numbers(loss), "outer/accuracies_support": numbers(accuracies_support),
                            "outer/accuracy_query": numbers(accuracy_query)})
        model = mamlpp_model(module, inputs, **MAMLPP_TECHNIQUES)
        loss, _, accuracy_query = model.outer_loop(_tasks(inputs), train=False)
        out.update({"eval/loss": numbers(loss), "eval/accuracy_query": numbers(accuracy_query)})
        return out

    results = {}
    for group, compute in (("schedules", schedules), ("batch_norm", batch_norm), ("adapt", adapt), ("outer", outer)):
        try:
            results[group] = compute()
        except Exception as error:  # noqa: BLE001 - reported per group by the checks
            results[group] = _failure(error)
    return results


def mamlpp(inputs: dict) -> dict:
    """``mamlpp_results`` of the student's MAMLPlusPlus."""
    return mamlpp_results(student_module("maml"), inputs)
