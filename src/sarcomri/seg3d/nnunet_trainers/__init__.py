"""nnU-Net trainer classes of sarcomri, found by nnU-Net by class name through the ``nnUNet_extTrainer``
environment variable (set to this folder by :mod:`sarcomri.seg3d.nnunet_engine`). The modules here import
``nnunetv2``; nothing in sarcomri imports them at start-up."""
