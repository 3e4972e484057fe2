-- One row per usable deal (int_deal_amounts without a reject_reason) with what ROI needs, in the home currency:
--   won_revenue   the converted amount (int_deal_amounts.amount_home) of won deals, 0 otherwise; a zero amount is a
--                 valid won deal
--   gross_margin  won deals only: revenue minus line items' unit cost x quantity when every line item has a cost
--                 (costs converted at the deal's rate; with HubSpot's amount_in_home_currency, at the
--                 amount_home / amount ratio; margin_source
--                 'line_items'), else revenue x the pipeline's configured margin rate (cfg_margin_rates, then an
--                 explicitly configured default_margin_rate; 'margin_rate'), else NULL ('none'): a margin is never
--                 guessed. 0 for deals that are not won.
--   weighted_amount  open deals: amount x stage probability
-- Money is DECIMAL(38, 2): amounts up to 10^12 EUR, and their sums, never overflow.
with deals as (
    select * from int_deal_amounts where reject_reason is null
),

params as (
    select try_cast(max(value) filter (where name = 'default_margin_rate') as decimal(9, 6)) as default_margin_rate
    from cfg_params
),

-- Associations recorded under a deal id that was merged since count for the deal that holds it now.
deal_items as (
    select distinct coalesce(deal_merges.surviving_deal_id, links.deal_id) as deal_id, links.line_item_id
    from stg_hubspot__deal_line_items as links
    left join stg_hubspot__deal_merges as deal_merges on deal_merges.merged_deal_id = links.deal_id
),

line_costs as (
    select
        deal_items.deal_id,
        count(*) as line_items,
        count(items.unit_cost) as costed_line_items,
        sum(items.quantity::decimal(38, 4) * items.unit_cost)::decimal(38, 4) as cost_in_deal_currency
    from deal_items
    join stg_hubspot__line_items as items on items.line_item_id = deal_items.line_item_id
    group by deal_items.deal_id
),

contacts_per_deal as (
    select
        coalesce(deal_merges.surviving_deal_id, links.deal_id) as deal_id,
        min(coalesce(merges.surviving_contact_id, links.contact_id)) as primary_contact_id,
        count(distinct coalesce(merges.surviving_contact_id, links.contact_id)) as contacts
    from stg_hubspot__contact_deals as links
    left join stg_hubspot__contact_merges as merges on merges.merged_contact_id = links.contact_id
    left join stg_hubspot__deal_merges as deal_merges on deal_merges.merged_deal_id = links.deal_id
    group by 1
),

enriched as (
    select
        deals.*,
        line_costs.line_items,
        line_costs.costed_line_items,
        line_costs.cost_in_deal_currency,
        coalesce(margin_rates.margin_rate, params.default_margin_rate) as margin_rate,
        contacts_per_deal.primary_contact_id,
        contacts_per_deal.contacts
    from deals
    cross join params
    left join line_costs on line_costs.deal_id = deals.deal_id
    left join cfg_margin_rates as margin_rates on margin_rates.pipeline = deals.pipeline_id
    left join contacts_per_deal on contacts_per_deal.deal_id = deals.deal_id
),

costed as (
    select
        *,
        case
            when line_items > 0 and costed_line_items = line_items then
                case
                    when fx_rate is not null then round(cost_in_deal_currency * fx_rate, 2)
                    when amount is not null and amount <> 0 and amount_home is not null
                        then roi_div_money(cost_in_deal_currency * amount_home, amount)
                end::decimal(38, 2)
        end as cost_of_goods_home
    from enriched
),

final as (
    select
        deal_id,
        deal_name,
        pipeline_id,
        stage_id,
        probability,
        is_closed,
        is_won,
        not is_closed as is_open,
        created_at,
        closed_at,
        case when is_won then closed_at end as won_at,
        currency,
        amount,
        fx_rate,
        fx_source,
        amount_home,
        case when is_won then coalesce(amount_home, 0) else 0 end::decimal(38, 2) as won_revenue,
        case
            when not is_won then 0
            when cost_of_goods_home is not null then coalesce(amount_home, 0) - cost_of_goods_home
            when margin_rate is not null then round(coalesce(amount_home, 0) * margin_rate, 2)
        end::decimal(38, 2) as gross_margin,
        case
            when cost_of_goods_home is not null then 'line_items'
            when margin_rate is not null then 'margin_rate'
            else 'none'
        end as margin_source,
        cost_of_goods_home,
        case when not is_closed then round(coalesce(amount_home, 0) * coalesce(probability, 0), 2) else 0 end
            ::decimal(38, 2) as weighted_amount,
        primary_contact_id,
        coalesce(contacts, 0) as contacts
    from costed
)

select * from final
