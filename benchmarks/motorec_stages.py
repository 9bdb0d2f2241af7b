"""Two training stages against one: `motorec_variant.py --variant one_stage` (the command that
wrote benchmarks/results/coldstart/motorec_stages.json).

    python benchmarks/motorec_stages.py LABEL=RUN_DIR [LABEL=RUN_DIR ...] --out OUT.json
"""

from motorec_variant import main

if __name__ == "__main__":
    main(variant="one_stage")
