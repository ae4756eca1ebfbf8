"""The ``ray:`` blocks of the config file, mapped one to one onto Ray Serve's deployment options.

A model's ``ray:`` block becomes the options of its deployment; the top-level ``ray:`` section
names the application and sizes the ingress. Only pydantic is imported here: the schema is
checked by ``modelport check`` on machines without Ray.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["ActorOptions", "AutoscalingOptions", "DeploymentOptions", "IngressOptions", "RaySection"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ActorOptions(_Section):
    """``ray_actor_options``: what each replica reserves on its node.

    Serve reserves one CPU per replica unless told otherwise; ``num_cpus: 0`` lets replicas share
    a small machine, and ``resources`` pins them to nodes that advertise a custom resource.
    """

    num_cpus: float | None = Field(default=None, ge=0)
    num_gpus: float | None = Field(default=None, ge=0)
    memory: int | None = Field(default=None, ge=0, description="bytes")
    resources: dict[str, float] = Field(default_factory=dict)
    accelerator_type: str | None = None
    runtime_env: dict[str, Any] | None = None

    def serve(self) -> dict[str, Any]:
        """The options as Serve takes them (unset ones left to Serve's defaults)."""
        return self.model_dump(exclude_none=True, exclude_defaults=True)


class AutoscalingOptions(_Section):
    """``autoscaling_config``: Serve's request-based autoscaling."""

    min_replicas: int = Field(default=1, ge=0)
    initial_replicas: int | None = Field(default=None, ge=0)
    max_replicas: int = Field(default=1, ge=1)
    target_ongoing_requests: float | None = Field(default=None, gt=0)
    upscale_delay_s: float | None = Field(default=None, ge=0)
    downscale_delay_s: float | None = Field(default=None, ge=0)
    upscaling_factor: float | None = Field(default=None, gt=0)
    downscaling_factor: float | None = Field(default=None, gt=0)
    metrics_interval_s: float | None = Field(default=None, gt=0)
    look_back_period_s: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> AutoscalingOptions:
        if self.min_replicas > self.max_replicas:
            raise ValueError("min_replicas must not exceed max_replicas")
        return self


class IngressOptions(_Section):
    """How many replicas a deployment runs and what each reserves; the ingress takes only these."""

    num_replicas: int | None = Field(default=None, ge=1)
    autoscaling_config: AutoscalingOptions | None = None
    max_ongoing_requests: int | None = Field(default=None, ge=1)
    ray_actor_options: ActorOptions | None = None
    graceful_shutdown_timeout_s: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _one_way_to_size(self) -> IngressOptions:
        if self.num_replicas is not None and self.autoscaling_config is not None:
            raise ValueError("give num_replicas or autoscaling_config, not both")
        return self

    def serve(self) -> dict[str, Any]:
        """The options as ``Deployment.options`` takes them (unset ones left to Serve's defaults)."""
        out = self.model_dump(exclude_none=True, exclude={"autoscaling_config", "ray_actor_options"})
        if self.autoscaling_config is not None:
            out["autoscaling_config"] = self.autoscaling_config.model_dump(exclude_none=True)
        if self.ray_actor_options is not None:
            out["ray_actor_options"] = self.ray_actor_options.serve()
        return out


class DeploymentOptions(IngressOptions):
    """A model's ``ray:`` block: the options of its Serve deployment.

    ``max_ongoing_requests`` defaults to the model's ``limits.max_concurrency`` (else its
    ``n_parallel``, the sequences its engine batches); ``max_queued_requests`` to its
    ``limits.max_queue``. Past the queue, requests get 429.
    """

    max_queued_requests: int | None = Field(default=None, ge=-1, description="-1: no limit")
    health_check_period_s: float | None = Field(default=None, gt=0)
    health_check_timeout_s: float | None = Field(default=None, gt=0)
    graceful_shutdown_wait_loop_s: float | None = Field(default=None, gt=0)
    max_replicas_per_node: int | None = Field(default=None, ge=1)

    def over(self, defaults: DeploymentOptions) -> DeploymentOptions:
        """These options on top of ``defaults`` (actor options merge key by key)."""
        merged = defaults.model_dump(exclude_unset=True)
        own = self.model_dump(exclude_unset=True)
        actor = {**merged.get("ray_actor_options", {}), **own.pop("ray_actor_options", {})}
        merged.update(own)
        if actor:
            merged["ray_actor_options"] = actor
        if "num_replicas" in own:
            merged.pop("autoscaling_config", None)
        if "autoscaling_config" in own:
            merged.pop("num_replicas", None)
        return DeploymentOptions.model_validate(merged)


class RaySection(_Section):
    """The top-level ``ray:`` section: the application's name and route, and its ingress."""

    app_name: str = Field(default="modelport", min_length=1)
    route_prefix: str = Field(default="/", pattern=r"^/")
    ingress: IngressOptions = IngressOptions()
    deployment_defaults: DeploymentOptions = Field(
        default_factory=DeploymentOptions, description="options every model deployment starts from"
    )
