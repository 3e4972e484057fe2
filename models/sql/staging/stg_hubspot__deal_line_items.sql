-- Deal <-> line item associations, one row per pair.
with source as (
    select * from raw.hubspot_deal_line_items
),

final as (
    select distinct deal_id, line_item_id
    from source
    where deal_id is not null and line_item_id is not null
)

select * from final
