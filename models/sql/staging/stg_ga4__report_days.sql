-- One row per GA4 report and day loaded, with what GA4 said about it: currency, time zone, whether rows were
-- folded into (other), whether the report is subject to thresholding, whether it was sampled.
with source as (
    select * from raw.ga4_report_days
),

final as (
    select
        property_id,
        report,
        "date" as report_date,
        upper(trim(currency_code)) as currency,
        time_zone,
        coalesce(data_loss_from_other_row, false) as has_other_row,
        coalesce(subject_to_thresholding, false) as is_thresholded,
        coalesce(sampled, false) as is_sampled,
        coalesce(row_count, 0) as row_count
    from source
)

select * from final
