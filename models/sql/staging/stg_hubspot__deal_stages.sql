-- Deal pipeline stages with their probability; a stage is "won" when it is closed with probability 1.
with stages as (
    select * from raw.hubspot_deal_stages
),

pipelines as (
    select * from raw.hubspot_deal_pipelines
),

final as (
    select
        stages.stage_id,
        stages.pipeline_id,
        stages.label as stage_label,
        pipelines.label as pipeline_label,
        stages.display_order,
        coalesce(stages.probability, 0)::decimal(4, 3) as probability,
        coalesce(stages.is_closed, false) as is_closed,
        coalesce(stages.is_closed, false) and stages.probability = 1 as is_won
    from stages
    left join pipelines on pipelines.pipeline_id = stages.pipeline_id
)

select * from final
